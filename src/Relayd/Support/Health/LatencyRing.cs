using HdrHistogram;

namespace Relayd.Support.Health;

/// <summary>
/// Delivery latencies (microseconds) in a ring of time buckets, one fixed-size log-bucketed histogram per bucket:
/// HdrHistogram's <see cref="IntConcurrentHistogram"/> (the served package the WAL's fdatasync latency already uses,
/// rather than a hand-written one), lossless under concurrent recording and allocation-free to record into.
/// </summary>
/// <remarks>
/// One significant digit: a bucket is at most 1/16 of its value wide, enough to tell 5 ms from 50 ms, and it keeps a
/// histogram at 448 counters (1.8 KB). Values from 1 ms (the resolution of accepted_at_ms) up to
/// <see cref="HighestUs"/>; longer ones (a backlog held for days) count at that value, and the exact largest is kept
/// beside each histogram.
/// </remarks>
internal sealed class LatencyRing : TimeRing
{
    /// <summary>1 ms, in microseconds: envelope times are milliseconds.</summary>
    public const long LowestUs = 1000;

    /// <summary>7 days, in microseconds.</summary>
    public const long HighestUs = 7L * 24 * 3600 * 1_000_000;

    private const int SignificantDigits = 1;

    private readonly IntConcurrentHistogram[] _histograms;
    private readonly long[] _max;

    public LatencyRing(int slots, long periodMs)
        : base(slots, periodMs)
    {
        _histograms = new IntConcurrentHistogram[slots];
        for (int i = 0; i < slots; i++)
        {
            _histograms[i] = new IntConcurrentHistogram(LowestUs, HighestUs, SignificantDigits);
        }

        _max = new long[slots];
    }

    public void Record(long nowMs, long latencyUs)
    {
        if (!TryEnter(nowMs, out int slot))
        {
            return;
        }

        long value = Math.Clamp(latencyUs, 0, HighestUs);
        _histograms[slot].RecordValue(value);
        long max = Volatile.Read(ref _max[slot]);
        while (latencyUs > max)
        {
            long seen = Interlocked.CompareExchange(ref _max[slot], latencyUs, max);
            if (seen == max)
            {
                break;
            }

            max = seen;
        }
    }

    /// <summary>Percentiles over the last <paramref name="periods"/> buckets (the current one included); allocates (a query, not the data path).</summary>
    public LatencySummary Summarize(long nowMs, int periods)
    {
        var state = new SummaryState { Merged = new LongHistogram(LowestUs, HighestUs, SignificantDigits), Ring = this };
        ForEachInWindow(nowMs, periods, ref state, static (int slot, ref SummaryState s) =>
        {
            s.Merged.Add(s.Ring._histograms[slot]);
            s.Max = Math.Max(s.Max, Volatile.Read(ref s.Ring._max[slot]));
        });
        LongHistogram merged = state.Merged;
        if (merged.TotalCount == 0)
        {
            return default;
        }

        // A percentile is its bucket's upper edge: never above the exact largest value.
        long At(double percentile) => Math.Min(merged.GetValueAtPercentile(percentile), state.Max);
        return new LatencySummary(merged.TotalCount, At(50), At(90), At(99), state.Max);
    }

    protected override void Clear(int slot)
    {
        _histograms[slot].Reset();
        Volatile.Write(ref _max[slot], 0);
    }

    private struct SummaryState
    {
        public LongHistogram Merged;
        public LatencyRing Ring;
        public long Max;
    }
}

/// <summary>Delivery latency over a window, microseconds; all zero when nothing was delivered.</summary>
internal readonly record struct LatencySummary(long Count, long P50Us, long P90Us, long P99Us, long MaxUs);
