namespace Relayd;

/// <summary>
/// Signed delivery evidence (docs/evidence.md): the <c>[evidence]</c> table. Off unless a signing key is named, because
/// the relay cannot sign without one and inventing a key nobody has published would attest nothing: an operator runs
/// <c>relayd pki init-evidence</c>, publishes the public key, and sets <c>key</c>.
/// </summary>
public sealed class EvidenceOptions
{
    private TimeSpan _signInterval = TimeSpan.FromSeconds(1);
    private int _signEvery = 65_536;
    private int _maxTreeLeaves = 1 << 18;
    private TimeSpan _maxTreeAge = TimeSpan.FromHours(1);
    private TimeSpan _retention = TimeSpan.FromDays(7);
    private long _maxBytes = 10L * 1024 * 1024 * 1024;
    private int _queueCapacity = 131_072;
    private int _indexCapacity = 1 << 20;

    /// <summary>Whether evidence is recorded when <see cref="KeyPath"/> is set (false turns it off and keeps the key). Defaults to true.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The Ed25519 signing key, an unencrypted PKCS#8 PEM, mode 0600 (<c>relayd pki init-evidence</c>). Defaults to none: evidence off.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Where the evidence files live; empty: <c>&lt;wal.dir&gt;/evidence</c>. Defaults to empty.</summary>
    public string Directory { get; set; } = "";

    /// <summary>Whether the relay records and signs evidence: enabled and a key named.</summary>
    public bool IsOn => Enabled && !string.IsNullOrEmpty(KeyPath);

    /// <summary>A tree head is signed this often while statements arrive. 10 ms to 1 minute. Defaults to 1000 ms.</summary>
    public TimeSpan SignInterval
    {
        get => _signInterval;
        set => _signInterval = value >= TimeSpan.FromMilliseconds(10) && value <= TimeSpan.FromMinutes(1) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 10-60000 ms");
    }

    /// <summary>... or as soon as this many statements are unsigned. 1 to 16777216. Defaults to 65536.</summary>
    public int SignEvery
    {
        get => _signEvery;
        set => _signEvery = value is >= 1 and <= 1 << 24 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1-16777216");
    }

    /// <summary>A tree is closed (final head signed) and a new one begun after this many statements: bounds its memory (about 130 bytes a leaf). 16 to 16777216. Defaults to 262144.</summary>
    public int MaxTreeLeaves
    {
        get => _maxTreeLeaves;
        set => _maxTreeLeaves = value is >= 16 and <= 1 << 24 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 16-16777216");
    }

    /// <summary>... or after this long. 1 second to 1 day. Defaults to 1 hour.</summary>
    public TimeSpan MaxTreeAge
    {
        get => _maxTreeAge;
        set => _maxTreeAge = value >= TimeSpan.FromSeconds(1) && value <= TimeSpan.FromDays(1) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1-86400 seconds");
    }

    /// <summary>Closed trees older than this are deleted (their proofs are no longer served). 1 hour to 10 years. Defaults to 7 days.</summary>
    public TimeSpan Retention
    {
        get => _retention;
        set => _retention = value >= TimeSpan.FromHours(1) && value <= TimeSpan.FromDays(3650) ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 3600-315360000 seconds");
    }

    /// <summary>The evidence files' size cap: beyond it the oldest closed trees are deleted first. 1 MiB to 1 PiB. Defaults to 10 GiB.</summary>
    public long MaxBytes
    {
        get => _maxBytes;
        set => _maxBytes = value is >= 1 << 20 and <= 1L << 50 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1048576-1125899906842624");
    }

    /// <summary>
    /// Statements waiting for the evidence writer; when full, new ones are dropped and counted
    /// (<c>relayd.evidence.dropped</c>), never waited for on the data path. 1024 to 16777216. Defaults to 131072.
    /// </summary>
    public int QueueCapacity
    {
        get => _queueCapacity;
        set => _queueCapacity = value is >= 1024 and <= 1 << 24 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1024-16777216");
    }

    /// <summary>Messages whose evidence is found from memory; older ones are found by scanning the files. 1024 to 67108864. Defaults to 1048576.</summary>
    public int IndexCapacity
    {
        get => _indexCapacity;
        set => _indexCapacity = value is >= 1024 and <= 1 << 26 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1024-67108864");
    }
}
