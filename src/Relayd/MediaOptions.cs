namespace Relayd;

/// <summary>Media transfers: where blobs are spooled and the limits on them. The <c>[media]</c> table of the config.</summary>
public sealed class MediaOptions
{
    /// <summary>The default spool directory of an installed relay (the .deb creates it, owned by the relayd user).</summary>
    public const string DefaultSpoolDirectory = "/var/lib/relayd/spool";

    private string _spoolDirectory = DefaultSpoolDirectory;
    /// <summary>The default of <see cref="MaxBytes"/>: 2 GiB.</summary>
    public const long DefaultMaxBytes = 2L * 1024 * 1024 * 1024;

    private long _maxBytes = DefaultMaxBytes;
    private long _spoolQuotaBytesPerPartner = 20L * 1024 * 1024 * 1024;
    private int _maxConcurrentTransfersPerPartner = 64;
    private TimeSpan _transferIdleTimeout = TimeSpan.FromSeconds(120);
    private int _windowBytes = 4 * 1024 * 1024;

    /// <summary>Directory that holds spooled blobs, one subdirectory per recipient partner. Defaults to "/var/lib/relayd/spool".</summary>
    public string SpoolDirectory
    {
        get => _spoolDirectory;
        set => _spoolDirectory = string.IsNullOrWhiteSpace(value) ? throw new ArgumentException("the spool directory must not be empty", nameof(value)) : value;
    }

    /// <summary>
    /// Largest blob a partner may send, in bytes; larger ones are refused with MEDIA_TOO_LARGE at MediaOpen.
    /// Per-partner override: <see cref="PartnerOptions.MaxMediaBytes"/>. 1 byte to 1 TiB. Defaults to 2 GiB (a long video).
    /// </summary>
    public long MaxBytes
    {
        get => _maxBytes;
        set => _maxBytes = CheckMaxBytes(value, nameof(MaxBytes));
    }

    /// <summary>
    /// Spool space one sender partner may hold at a time (declared sizes of its open and undelivered transfers), in bytes;
    /// beyond it MediaOpen is refused with SPOOL_FULL, which affects no other partner. 1 byte to 1 PiB. Defaults to 20 GiB.
    /// </summary>
    public long SpoolQuotaBytesPerPartner
    {
        get => _spoolQuotaBytesPerPartner;
        set => _spoolQuotaBytesPerPartner = value is > 0 and <= 1L << 50 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be between 1 and 1125899906842624");
    }

    /// <summary>Transfers one partner may have open (opened, not yet closed) at a time. Defaults to 64.</summary>
    public int MaxConcurrentTransfersPerPartner
    {
        get => _maxConcurrentTransfersPerPartner;
        set => _maxConcurrentTransfersPerPartner = value is >= 1 and <= 100_000 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1-100000");
    }

    /// <summary>
    /// An open transfer that receives no chunk for this long is dropped and its partial spool deleted (MEDIA_IDLE_TIMEOUT).
    /// Long enough for a phone to reconnect and resume. 100 ms to 1 day. Defaults to 120 s.
    /// </summary>
    public TimeSpan TransferIdleTimeout
    {
        get => _transferIdleTimeout;
        set => _transferIdleTimeout = value >= TimeSpan.FromMilliseconds(100) && value <= TimeSpan.FromDays(1)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(value), value, "must be between 100 ms and 1 day");
    }

    /// <summary>
    /// Credit window per transfer, in bytes: the sender never has more than this in flight beyond what the relay has
    /// written out. Defaults to 4 MiB (about 3 ms at 1.1 GiB/s TLS, enough to keep the link busy).
    /// </summary>
    public int WindowBytes
    {
        get => _windowBytes;
        set => _windowBytes = value is >= 64 * 1024 and <= 256 * 1024 * 1024 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 64 KiB-256 MiB");
    }

    /// <summary>The bounds of <see cref="MaxBytes"/>, which a partner's own limit shares.</summary>
    internal static long CheckMaxBytes(long value, string name) =>
        value is > 0 and <= 1L << 40 ? value : throw new ArgumentOutOfRangeException(name, value, "must be between 1 and 1099511627776");
}
