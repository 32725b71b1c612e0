using Relayd.Routing;

namespace Relayd.Storage;

/// <summary>
/// A snapshot of the durable store for operators (and the metrics endpoint of the operations work): log size,
/// segments, fdatasync latency, and the backlog each recipient partner has in memory and in the log only.
/// </summary>
internal sealed record StorageMetrics(
    long LogBytes,
    int Segments,
    long Syncs,
    double SyncP50Microseconds,
    double SyncP99Microseconds,
    double SyncMaxMicroseconds,
    IReadOnlyList<PartnerBacklog> Backlog)
{
    public static StorageMetrics Capture(MessageStore store, PartnerDirectory partners)
    {
        HdrHistogram.HistogramBase sync = store.Log.SyncLatency;
        bool any = sync.TotalCount > 0;
        return new StorageMetrics(
            store.Log.SizeBytes,
            store.Log.Segments.Count,
            store.Log.SyncCount,
            any ? sync.GetValueAtPercentile(50) : 0,
            any ? sync.GetValueAtPercentile(99) : 0,
            any ? HdrHistogram.HistogramExtensions.GetMaxValue(sync) : 0,
            [.. partners.Partners.Select(p => new PartnerBacklog(p.Id, p.Mailbox.Shards.Sum(s => (long)s.Count), p.Mailbox.Shards.Sum(s => (long)s.SpilledCount)))]);
    }

    public override string ToString() =>
        $"log {LogBytes / (1024 * 1024)} MiB in {Segments} segments; {Syncs} fdatasyncs, p50 {SyncP50Microseconds:F0} µs, p99 {SyncP99Microseconds:F0} µs, max {SyncMaxMicroseconds:F0} µs; backlog "
        + string.Join(", ", Backlog.Select(b => $"{b.Partner} {b.InMemory}+{b.InLogOnly}"));
}

/// <summary>Envelopes waiting for one recipient partner: held in memory, and only in the log (spilled).</summary>
internal sealed record PartnerBacklog(string Partner, long InMemory, long InLogOnly);
