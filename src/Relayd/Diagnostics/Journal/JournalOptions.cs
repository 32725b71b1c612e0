namespace Relayd.Diagnostics.Journal;

/// <summary>Where and how <see cref="JournalLoggerProvider"/> writes to the journal.</summary>
internal sealed class JournalOptions
{
    /// <summary>The smallest <see cref="MaxEntryBytes"/> allowed: room for the fixed fields and a readable message.</summary>
    public const int MinEntryBytes = 4096;

    /// <summary>journald's native socket. Defaults to <c>/run/systemd/journal/socket</c> (systemd's fixed path).</summary>
    public string SocketPath { get; init; } = "/run/systemd/journal/socket";

    /// <summary>
    /// The largest datagram sent, in bytes; a longer MESSAGE is cut to fit and marked <c>[truncated]</c>. Defaults to
    /// 131072 (128 KiB), below Linux's default socket send buffer limit (<c>net.core.wmem_max</c>, 208 KiB), which
    /// bounds an AF_UNIX datagram. At least <see cref="MinEntryBytes"/>.
    /// </summary>
    public int MaxEntryBytes
    {
        get;
        init => field = value >= MinEntryBytes ? value : throw new ArgumentOutOfRangeException(nameof(MaxEntryBytes), value, $"at least {MinEntryBytes}");
    } = 128 * 1024;

    /// <summary>Whether MESSAGE carries an exception's stack trace (else its type and message only). Defaults to false (true when logging at Debug).</summary>
    public bool IncludeStackTraces { get; init; }
}
