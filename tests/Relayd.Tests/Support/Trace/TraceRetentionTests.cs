using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Support.Trace;

namespace Relayd.Tests.Support.Trace;

/// <summary>
/// The trace stays bounded on a long run: beyond [trace] max_bytes the oldest segments go first, past the retention
/// every segment of older events goes (a FakeTimeProvider stands for the seven days), and the metric counts every event
/// deleted: what was written is what is left plus what was counted.
/// </summary>
public sealed class TraceRetentionTests : IDisposable
{
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));
    private readonly PartnerInfo _alpha = new(new PartnerOptions { Id = "alpha" }, new RelayLimits());
    private readonly PartnerInfo _beta = new(new PartnerOptions { Id = "beta" }, new RelayLimits());
    private readonly DirectoryInfo _wal = Directory.CreateTempSubdirectory("relayd-trace-retention-");

    private long Now => _clock.GetUtcNow().ToUnixTimeMilliseconds();

    public void Dispose() => _wal.Delete(recursive: true);

    [Fact]
    public async Task The_size_cap_drops_the_oldest_segments_first_and_the_retention_every_older_one_each_counted()
    {
        var options = new TraceOptions { SegmentBytes = 64 * 1024, MaxBytes = 1 << 20 };
        using TraceRecorder trace = TraceRecorder.Open(options, _wal.FullName, _clock, NullLogger.Instance);
        using var meter = new Meter("trace-retention-test-" + Guid.NewGuid().ToString("N"));
        trace.ObserveMetrics(meter);
        const int Messages = 40_000; // 3 events each: well over a MiB of records
        for (int i = 1; i <= Messages; i++)
        {
            UInt128 id = (UInt128)i;
            trace.EnvelopeDuplicate(_alpha, 7, id, Now);
            trace.EnvelopeDelivered(_alpha, id, _beta, 8, (ulong)i, Now);
            trace.EnvelopeAcknowledged(_alpha, id, _beta, 8, (ulong)i, Now, Now, Now);
            _clock.Advance(TimeSpan.FromMilliseconds(1));
            if (i % 5000 == 0)
            {
                await trace.FlushAsync(); // the ring holds 32768: keep the writer up with a loop faster than any relay
            }
        }

        await trace.FlushAsync();
        long written = Messages * 3L;
        Assert.Equal(0, trace.Counters.DroppedTotal);
        Assert.Equal(written, trace.Counters.WrittenTotal);
        long onDisk = Directory.EnumerateFiles(trace.Directory).Where(IsSegment).Sum(f => new FileInfo(f).Length);
        Assert.True(onDisk <= options.MaxBytes, $"{onDisk} bytes of segments, above max_bytes {options.MaxBytes}");
        Assert.True(trace.Counters.ExpiredTotal > 0, "nothing was deleted");
        Assert.Equal(written, trace.Counters.ExpiredTotal + EventsLeft(trace));

        // Oldest first: the first messages are gone, the last are all there.
        Assert.Null(await TraceQuery.MessageAsync(trace, "alpha", 1, TestContext.Current.CancellationToken));
        MessageTrace? last = await TraceQuery.MessageAsync(trace, "alpha", Messages, TestContext.Current.CancellationToken);
        Assert.Equal([TraceEventKind.TraceDuplicate, TraceEventKind.TraceDelivered, TraceEventKind.TraceAcknowledged], last!.Events.Select(e => e.Kind));
        Assert.Equal(trace.Counters.ExpiredTotal, Observed(meter, "relayd.trace.events.expired"));

        // Seven days and a bit later every segment of those events is past the retention (the open one is closed
        // for its age): only segments with the new event remain.
        long bySize = trace.Counters.ExpiredTotal;
        _clock.Advance(TimeSpan.FromDays(7) + TimeSpan.FromMinutes(1));
        trace.EnvelopeDuplicate(_alpha, 7, Messages + 1, Now);
        long cutoffMs = Now - (long)options.Retention.TotalMilliseconds;
        await TraceTimelineTests.WaitUntilAsync(() => TraceSegment.List(trace.Directory).All(s => s.IsOpen || s.LastMs >= cutoffMs) && trace.Counters.ExpiredTotal > bySize);
        Assert.True(trace.Counters.ExpiredTotal > bySize);
        await trace.FlushAsync();
        Assert.Equal(written + 1, trace.Counters.ExpiredTotal + EventsLeft(trace));
        Assert.NotNull(await TraceQuery.MessageAsync(trace, "alpha", Messages + 1, TestContext.Current.CancellationToken));
    }

    [Fact]
    public void A_full_ring_drops_and_counts_instead_of_blocking_the_data_path()
    {
        var ring = new TraceRing(4);
        var entry = new TraceEntry { Kind = TraceEventKind.TraceDurable, AtMs = 1 };
        Assert.True(ring.TryAdd(entry) && ring.TryAdd(entry) && ring.TryAdd(entry) && ring.TryAdd(entry));
        Assert.False(ring.TryAdd(entry));
        Assert.True(ring.TryTake(out TraceEntry taken));
        Assert.Equal(TraceEventKind.TraceDurable, taken.Kind);
        Assert.True(ring.TryAdd(entry));
    }

    private static bool IsSegment(string path) => path.EndsWith(TraceSegment.OpenSuffix, StringComparison.Ordinal) || path.EndsWith(TraceSegment.ClosedSuffix, StringComparison.Ordinal);

    private static long EventsLeft(TraceRecorder trace)
    {
        long events = 0;
        foreach (TraceSegment segment in TraceSegment.List(trace.Directory))
        {
            TraceSegmentReader.Read(segment.Path, static (_, _) => true, _ => events++);
        }

        return events;
    }

    private static long Observed(Meter meter, string name)
    {
        long total = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, meter) && instrument.Name == name)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => total += value);
        listener.Start();
        listener.RecordObservableInstruments();
        return total;
    }
}
