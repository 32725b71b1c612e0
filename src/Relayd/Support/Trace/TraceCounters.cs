using System.Diagnostics.Metrics;

namespace Relayd.Support.Trace;

/// <summary>
/// The trace's metrics, on the relay's meter (docs/operations.md, "Metrics"): events written, dropped (the ring was full
/// or the disk failed), expired (deleted with their segment by the retention or the size cap), and the bytes held.
/// Counted with Interlocked adds and observed at collection time: the data path pays one add per drop, nothing more.
/// </summary>
internal sealed class TraceCounters
{
    private static readonly KeyValuePair<string, object?> ByRetention = new("reason", "retention");
    private static readonly KeyValuePair<string, object?> BySize = new("reason", "size");

    private long _written;
    private long _dropped;
    private long _expiredByRetention;
    private long _expiredBySize;

    public long WrittenTotal => Interlocked.Read(ref _written);

    public long DroppedTotal => Interlocked.Read(ref _dropped);

    public long ExpiredTotal => Interlocked.Read(ref _expiredByRetention) + Interlocked.Read(ref _expiredBySize);

    public void Observe(Meter meter, Func<long> bytes)
    {
        meter.CreateObservableCounter("relayd.trace.events.written", () => WrittenTotal, "{event}", "Trace events written to the trace's segment files");
        meter.CreateObservableCounter("relayd.trace.events.dropped", () => DroppedTotal, "{event}", "Trace events lost before they were written: the in-memory ring was full (the writer was behind) or the disk failed");
        meter.CreateObservableCounter("relayd.trace.events.expired", () => (Measurement<long>[])
            [new(Interlocked.Read(ref _expiredByRetention), ByRetention), new(Interlocked.Read(ref _expiredBySize), BySize)],
            "{event}", "Trace events deleted with their segment, oldest first, by reason (retention: older than [trace] retention_seconds; size: beyond [trace] max_bytes)");
        meter.CreateObservableGauge("relayd.trace.size", bytes, "By", "Bytes of the trace's segment files");
    }

    public void Written(int events) => Interlocked.Add(ref _written, events);

    public void Dropped(long events) => Interlocked.Add(ref _dropped, events);

    public void Expired(long events, string reason) =>
        Interlocked.Add(ref reason == "retention" ? ref _expiredByRetention : ref _expiredBySize, events);
}
