namespace Relayd.Wal;

/// <summary>
/// How the log writer makes a batch durable. A batch is everything appended while the previous batch was being
/// written and synced, so batches size themselves to the load without a timer (PERFORMANCE.md lesson 1).
/// </summary>
public sealed class WalCommitPolicy
{
    private WalCommitPolicy(string name, bool syncs, TimeSpan commitDelay = default)
    {
        Name = name;
        Syncs = syncs;
        CommitDelay = commitDelay;
    }

    /// <summary>
    /// The default: each batch is written with pwrite and then made durable with fdatasync(2) before
    /// <see cref="WriteAheadLog.DurablePosition"/> moves past it.
    /// </summary>
    public static WalCommitPolicy GroupCommit { get; } = new("group-commit", syncs: true);

    /// <summary>
    /// Group commit that lets a small batch grow for up to <paramref name="delay"/> when more records are already
    /// waiting after a commit (never when the log is idle, so a lone record is not delayed). Trades that much latency
    /// for fewer fdatasync calls under load, where each one costs CPU whatever its size.
    /// </summary>
    public static WalCommitPolicy GroupCommitWithDelay(TimeSpan delay) => new($"group-commit-delay-{delay.TotalMicroseconds:F0}us", syncs: true, delay);

    /// <summary>
    /// Each batch is written with pwrite but never synced: "durable" then only means "in the page cache", which an
    /// operating-system crash or power loss can lose. For benchmarks that measure everything except the disk flush.
    /// </summary>
    public static WalCommitPolicy WriteWithoutSync { get; } = new("write-without-sync", syncs: false);

    /// <summary>The policy's name, as it appears in configuration and logs.</summary>
    public string Name { get; }

    /// <summary>Whether a batch is followed by fdatasync before it counts as committed.</summary>
    internal bool Syncs { get; }

    /// <summary>How long a small batch may wait to grow when records are already waiting (zero: never).</summary>
    internal TimeSpan CommitDelay { get; }

    /// <inheritdoc />
    public override string ToString() => Name;
}
