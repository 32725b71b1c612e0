using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;

namespace Relayd.Diagnostics.Prometheus;

/// <summary>
/// One instrument as a Prometheus metric family: its name, HELP and TYPE, and a series per set of tag values. The
/// exporter's listener hands each measurement to <see cref="Record(long, ReadOnlySpan{KeyValuePair{string, object?}})"/>,
/// which finds the series without allocating (a <see cref="SeriesKey"/> on the stack, a lock-free dictionary read);
/// only a new set of tag values allocates, once.
/// </summary>
internal sealed class MetricFamily
{
    /// <summary>
    /// Series one family may have: relayd's tags come from the configuration (partners) and the proto (codes), so this is
    /// never reached in practice; past it, measurements go to one series labelled <c>otel_metric_overflow="true"</c>
    /// (OpenTelemetry's convention) rather than grow without end.
    /// </summary>
    public const int MaxSeries = 2000;

    // Prometheus' default buckets, in seconds, for a histogram whose instrument gives no advice.
    private static readonly double[] DefaultBounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly ConcurrentDictionary<SeriesKey, MetricSeries> _series = new();
    private readonly double _divisor;
    private readonly double[] _bounds;
    private readonly Kind _kind;
    private MetricSeries? _overflow;

    public MetricFamily(Instrument instrument)
    {
        Name = PrometheusText.MetricName(instrument, out _divisor);
        Help = instrument.Description ?? instrument.Name;
        Type = PrometheusText.TypeOf(instrument);
        IsObservable = instrument.IsObservable;
        _kind = PrometheusText.IsHistogram(instrument) ? Kind.Histogram : IsObservable && Type == "gauge" ? Kind.LastValue : Kind.Sum;
        _bounds = _kind == Kind.Histogram ? BoundsOf(instrument, _divisor) : [];
    }

    private enum Kind
    {
        Sum,
        LastValue,
        Histogram,
    }

    public string Name { get; }

    public string Help { get; }

    public string Type { get; }

    /// <summary>Read at collection time: its series are cleared before each collection, so a partner gone is gone.</summary>
    public bool IsObservable { get; }

    public void Record(long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        MetricSeries series = Find(tags);
        switch (_kind)
        {
            case Kind.Histogram:
                series.Observe(value / _divisor);
                break;
            case Kind.LastValue:
                series.Set(value / _divisor);
                break;
            default:
                if (_divisor == 1.0)
                {
                    series.Add(value);
                }
                else
                {
                    series.Add(value / _divisor);
                }

                break;
        }
    }

    public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        MetricSeries series = Find(tags);
        double converted = value / _divisor;
        switch (_kind)
        {
            case Kind.Histogram:
                series.Observe(converted);
                break;
            case Kind.LastValue:
                series.Set(converted);
                break;
            default:
                series.Add(converted);
                break;
        }
    }

    /// <summary>Forgets every series (an observable family, before it is read again).</summary>
    public void Clear()
    {
        _series.Clear();
        _overflow = null;
    }

    /// <summary>Appends the family in the text format: HELP, TYPE, then its series in label order.</summary>
    public void WriteTo(StringBuilder text)
    {
        PrometheusText.AppendHelp(text.Append("# HELP ").Append(Name).Append(' '), Help).Append('\n');
        text.Append("# TYPE ").Append(Name).Append(' ').Append(Type).Append('\n');
        List<MetricSeries> series = [.. _series.Values];
        if (_overflow is { } overflow)
        {
            series.Add(overflow);
        }

        if (series.Count == 0 && !IsObservable)
        {
            series.Add(new MetricSeries("", _bounds)); // a family nothing was recorded on yet reads 0, not absent
        }

        series.Sort((a, b) => string.CompareOrdinal(a.Labels, b.Labels));
        foreach (MetricSeries one in series)
        {
            if (_kind == Kind.Histogram)
            {
                WriteHistogram(text, one);
            }
            else
            {
                WriteSample(text, Name, one.Labels, "", PrometheusText.Value(one.Value));
            }
        }
    }

    private void WriteHistogram(StringBuilder text, MetricSeries series)
    {
        Span<long> cumulative = stackalloc long[series.BucketCount];
        series.ReadHistogram(cumulative, out double sum);
        for (int i = 0; i < cumulative.Length; i++)
        {
            string le = i < _bounds.Length ? PrometheusText.Value(_bounds[i]) : "+Inf";
            WriteSample(text, Name + "_bucket", series.Labels, $"le=\"{le}\"", cumulative[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        WriteSample(text, Name + "_sum", series.Labels, "", PrometheusText.Value(sum));
        WriteSample(text, Name + "_count", series.Labels, "", cumulative[^1].ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static void WriteSample(StringBuilder text, string name, string labels, string extraLabel, string value)
    {
        text.Append(name);
        if (labels.Length > 0 || extraLabel.Length > 0)
        {
            text.Append('{').Append(labels);
            if (labels.Length > 0 && extraLabel.Length > 0)
            {
                text.Append(',');
            }

            text.Append(extraLabel).Append('}');
        }

        text.Append(' ').Append(value).Append('\n');
    }

    private MetricSeries Find(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var key = new SeriesKey(tags);
        if (_series.TryGetValue(key, out MetricSeries? series))
        {
            return series;
        }

        if (_series.Count >= MaxSeries)
        {
            return _overflow ??= new MetricSeries("otel_metric_overflow=\"true\"", _bounds);
        }

        return _series.GetOrAdd(key, static (k, family) => new MetricSeries(LabelsOf(k), family._bounds), this);
    }

    private static string LabelsOf(SeriesKey key)
    {
        var labels = new StringBuilder();
        for (int i = 0; i < key.Count; i++)
        {
            KeyValuePair<string, object?> tag = key[i];
            if (i > 0)
            {
                labels.Append(',');
            }

            labels.Append(PrometheusText.LabelName(tag.Key)).Append("=\"");
            PrometheusText.AppendLabelValue(labels, Convert.ToString(tag.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "").Append('"');
        }

        return labels.ToString();
    }

    // The instrument's advised bucket bounds (in its own unit), converted to the exported one.
    private static double[] BoundsOf(Instrument instrument, double divisor)
    {
        double[]? advised = instrument switch
        {
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries?.ToArray(),
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            _ => null,
        };
        if (advised is null)
        {
            return DefaultBounds;
        }

        double[] bounds = [.. advised.Select(b => b / divisor)];
        Array.Sort(bounds);
        return bounds;
    }
}
