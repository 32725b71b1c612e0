namespace Relayd.Storage;

/// <summary>
/// A snapshot of the durable store for operators (and the metrics endpoint of the operations work): log size,
/// segments, fdatasync latency (<see cref="IEnvelopeStore.CaptureMetrics"/>), and the backlog each recipient partner
/// has in memory and in the log only.
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
    public override string ToString() =>
        $"log {LogBytes / (1024 * 1024)} MiB in {Segments} segments; {Syncs} fdatasyncs, p50 {SyncP50Microseconds:F0} µs, p99 {SyncP99Microseconds:F0} µs, max {SyncMaxMicroseconds:F0} µs; backlog "
        + string.Join(", ", Backlog.Select(b => $"{b.Partner} {b.InMemory}+{b.InLogOnly}"));
}

/// <summary>Envelopes waiting for one recipient partner: held in memory, and only in the log (spilled).</summary>
internal sealed record PartnerBacklog(string Partner, long InMemory, long InLogOnly);
