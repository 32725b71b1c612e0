namespace Relayd.Diagnostics.Prometheus;

/// <summary>
/// The values of one instrument for one set of tags: a sum (counters, up-down counters), a last value (observable
/// gauges) or histogram buckets. Recording is lock-free and allocates nothing: <see cref="Interlocked"/> on fields and
/// on a bucket array made once.
/// </summary>
internal sealed class MetricSeries
{
    private readonly double[] _bounds; // upper bounds in the exported unit, ascending; empty unless a histogram
    private readonly long[] _buckets;  // per bound, not cumulative; the last one is +Inf
    private long _longSum;
    private double _doubleSum;

    public MetricSeries(string labels, double[] bounds)
    {
        Labels = labels;
        _bounds = bounds;
        _buckets = bounds.Length == 0 ? [] : new long[bounds.Length + 1];
    }

    /// <summary>The series' label pairs as the text format writes them between braces (<c>partner="alpha"</c>), or "".</summary>
    public string Labels { get; }

    /// <summary>A counter's or up-down counter's running total, or a gauge's value.</summary>
    public double Value => Interlocked.Read(ref _longSum) + Volatile.Read(ref _doubleSum);

    public void Add(long value) => Interlocked.Add(ref _longSum, value);

    public void Add(double value) => AddDouble(ref _doubleSum, value);

    public void Set(double value)
    {
        Interlocked.Exchange(ref _longSum, 0);
        Volatile.Write(ref _doubleSum, value);
    }

    /// <summary>Adds <paramref name="value"/> (in the exported unit) to its bucket and to the sum.</summary>
    public void Observe(double value)
    {
        int bucket = Array.BinarySearch(_bounds, value);
        bucket = bucket >= 0 ? bucket : ~bucket; // a value equal to a bound belongs to it (le = "less or equal")
        Interlocked.Increment(ref _buckets[bucket]);
        AddDouble(ref _doubleSum, value);
    }

    /// <summary>The buckets, cumulative, read once: the last is the count, so <c>+Inf</c> and <c>_count</c> always agree.</summary>
    public void ReadHistogram(Span<long> cumulative, out double sum)
    {
        long running = 0;
        for (int i = 0; i < _buckets.Length; i++)
        {
            running += Interlocked.Read(ref _buckets[i]);
            cumulative[i] = running;
        }

        sum = Volatile.Read(ref _doubleSum);
    }

    public int BucketCount => _buckets.Length;

    private static void AddDouble(ref double location, double value)
    {
        double seen = Volatile.Read(ref location);
        while (true)
        {
            double found = Interlocked.CompareExchange(ref location, seen + value, seen);
            if (BitConverter.DoubleToInt64Bits(found) == BitConverter.DoubleToInt64Bits(seen)) // bitwise: NaN never equals itself
            {
                return;
            }

            seen = found;
        }
    }
}
