using Relayd.Wal;

namespace Relayd;

/// <summary>The write-ahead log that makes an Ack mean "on disk": the <c>[wal]</c> table of the configuration.</summary>
public sealed class StorageOptions
{
    /// <summary>
    /// Size of each of the log's two write buffers (one fills while the other is written and synced), capped at
    /// <see cref="SegmentBytes"/>. Not an option: it only bounds one group commit, and 4 MiB is several times the
    /// largest batch the relay produces under load (about 330 KiB of 1 KiB envelopes, 770 KiB of 64 KiB ones), while
    /// still holding the largest default frame (1 MiB) in one record.
    /// </summary>
    internal const int WalWriteBufferBytes = 4 * 1024 * 1024;

    private int _segmentBytes = 64 * 1024 * 1024;
    private long _reserveBytes = 512L * 1024 * 1024;
    private TimeSpan _retentionInterval = TimeSpan.FromSeconds(5);
    private TimeSpan _commitDelay = TimeSpan.FromMicroseconds(200);

    /// <summary>Directory of the log's segment files; created when missing. One relay per directory. Defaults to "/var/lib/relayd/wal".</summary>
    public string Directory { get; set; } = "/var/lib/relayd/wal";

    /// <summary>
    /// Size of each segment file, a multiple of 4096 from 1 MiB to 1 GiB. Whole segments are the unit of retention.
    /// Defaults to 64 MiB.
    /// </summary>
    public int SegmentBytes
    {
        get => _segmentBytes;
        set => _segmentBytes = value is >= 1024 * 1024 and <= 1 << 30 && value % 4096 == 0
            ? value
            : throw new ArgumentOutOfRangeException(nameof(SegmentBytes), value, "must be a multiple of 4096 between 1048576 and 1073741824");
    }

    /// <summary>
    /// Free bytes kept on the log's filesystem. Below it senders get STORAGE_FULL (with retry_after_ms) while
    /// delivering goes on; accepting resumes when delivered segments are deleted or space is freed. 0 to 1 TiB.
    /// Defaults to 512 MiB.
    /// </summary>
    public long ReserveBytes
    {
        get => _reserveBytes;
        set => _reserveBytes = value is >= 0 and <= 1L << 40 ? value : throw new ArgumentOutOfRangeException(nameof(ReserveBytes), value, "must be between 0 and 1099511627776");
    }

    /// <summary>
    /// fdatasync every group commit. False writes without syncing: an Ack then survives a relay crash but not a power
    /// loss; for benchmarks only, and logged as a warning at start. Defaults to true.
    /// </summary>
    public bool Sync { get; set; } = true;

    /// <summary>
    /// How often expired envelopes are settled. Delivered segments are deleted every sixth pass (each deletion writes
    /// the dedup snapshot), at once when 16 or more are deletable, and every second while storage is full. 1 ms to
    /// 1 hour. Defaults to 5 seconds.
    /// </summary>
    public TimeSpan RetentionInterval
    {
        get => _retentionInterval;
        set => _retentionInterval = value >= TimeSpan.FromMilliseconds(1) && value <= TimeSpan.FromHours(1)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(RetentionInterval), value, "must be between 1 ms and 1 hour");
    }

    /// <summary>
    /// Under load, how long a small group commit may wait for more records before its fdatasync (never when the log
    /// is idle). Fewer syncs leave more CPU for TLS; the price is up to this much ack latency. Zero disables; at most
    /// 10 ms. Defaults to 200 µs.
    /// </summary>
    public TimeSpan CommitDelay
    {
        get => _commitDelay;
        set => _commitDelay = value >= TimeSpan.Zero && value <= TimeSpan.FromMilliseconds(10)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(CommitDelay), value, "must be between 0 and 10000 µs");
    }

    /// <summary>Fault injection for tests: the fdatasync the log calls. Defaults to null (the real syscall).</summary>
    internal IWalFileSync? FileSync { get; set; }

    /// <summary>The options of the write-ahead log these stand for: its directory, segment size, buffers and commit policy.</summary>
    /// <param name="metrics">Where the log records its commit durations and bytes; null records nothing.</param>
    public WalOptions ToWalOptions(Diagnostics.RelayMetrics? metrics = null) => new()
    {
        Directory = Directory,
        SegmentBytes = SegmentBytes,
        WriteBufferBytes = Math.Min(WalWriteBufferBytes, SegmentBytes),
        FileSync = FileSync ?? LibcFileSync.Instance,
        CommitPolicy = !Sync ? WalCommitPolicy.WriteWithoutSync
            : CommitDelay > TimeSpan.Zero ? WalCommitPolicy.GroupCommitWithDelay(CommitDelay)
            : WalCommitPolicy.GroupCommit,
        Metrics = metrics,
    };
}
