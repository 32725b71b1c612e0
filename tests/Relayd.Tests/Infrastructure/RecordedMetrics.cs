using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// Every measurement of one relay's instruments. Listeners are process-wide; this one enables only the instruments
/// of <paramref name="meter"/>, the relay's own, so relays of other tests running meanwhile do not show up here.
/// </summary>
internal sealed class RecordedMetrics : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _sums = new();
    private readonly ConcurrentDictionary<string, long> _recorded = new();
    private int _mostTags;

    public RecordedMetrics(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument.Name, value, tags));
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument.Name, (long)value, tags));
        _listener.Start();
    }

    /// <summary>The sum of every value recorded on <paramref name="instrument"/>.</summary>
    public long Sum(string instrument) => _sums.GetValueOrDefault(instrument);

    /// <summary>The sum of values recorded on <paramref name="instrument"/> with tag <paramref name="key"/> = <paramref name="value"/>.</summary>
    public long Sum(string instrument, string key, string value) => _sums.GetValueOrDefault($"{instrument}{{{key}={value}}}");

    /// <summary>How many measurements <paramref name="instrument"/> took (for histograms).</summary>
    public long Recorded(string instrument) => _recorded.GetValueOrDefault(instrument);

    /// <summary>The most tags one measurement carried.</summary>
    public int MostTags => Volatile.Read(ref _mostTags);

    public void Dispose() => _listener.Dispose();

    private void Record(string instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        _sums.AddOrUpdate(instrument, value, (_, sum) => sum + value);
        _recorded.AddOrUpdate(instrument, 1, (_, n) => n + 1);
        for (int most = _mostTags; tags.Length > most; most = _mostTags)
        {
            Interlocked.CompareExchange(ref _mostTags, tags.Length, most);
        }
        foreach (KeyValuePair<string, object?> tag in tags)
        {
            _sums.AddOrUpdate($"{instrument}{{{tag.Key}={tag.Value}}}", value, (_, sum) => sum + value);
        }
    }
}
