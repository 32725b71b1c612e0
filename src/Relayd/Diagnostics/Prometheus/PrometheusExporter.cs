using System.Diagnostics.Metrics;
using System.Text;

namespace Relayd.Diagnostics.Prometheus;

/// <summary>
/// Exports one relay's <see cref="RelayMetrics.Meter"/> in the Prometheus text format: a <see cref="MeterListener"/>
/// that enables only that meter's instruments and aggregates their measurements as they are recorded (one
/// <see cref="MetricFamily"/> per instrument), and <see cref="Collect"/>, which reads the observable gauges and writes
/// every family.
/// </summary>
/// <remarks>
/// Why a small exporter of our own rather than prometheus-net 8.2.1 (tried: it publishes under NativeAOT without
/// warnings, +7.8 MB in a trial console app): prometheus-net is a registry of its own instruments; our
/// <see cref="Meter"/> reaches it only through its MeterAdapter, which listens to every meter of the process by name (two
/// relays in one process would count together) and turns tags into label arrays per measurement, and its
/// MetricServer is an HttpListener without request-size or read-time bounds. It also brings
/// Microsoft.Extensions.Http and ObjectPool versions of its own. What relayd needs from it is ~300 lines: the
/// aggregation (lock-free, allocation-free per measurement) and the text format 0.0.4. OpenTelemetry's
/// HttpListener exporter calls itself not production-ready. No served package does this alone.
/// </remarks>
internal sealed class PrometheusExporter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _families = new();
    private readonly List<MetricFamily> _published = [];
    private readonly Lock _collecting = new();

    public PrometheusExporter(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter, meter))
            {
                var family = new MetricFamily(instrument);
                lock (_families)
                {
                    _published.Add(family);
                }

                listener.EnableMeasurementEvents(instrument, family);
            }
        };
        _listener.MeasurementsCompleted = (_, state) =>
        {
            lock (_families)
            {
                _published.Remove((MetricFamily)state!);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, tags, state) => ((MetricFamily)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, value, tags, state) => ((MetricFamily)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, value, tags, state) => ((MetricFamily)state!).Record(value, tags));
        _listener.Start();
    }

    /// <summary>Every metric as the text format (UTF-8), its observable gauges read now.</summary>
    public byte[] Collect()
    {
        var text = new StringBuilder(16 * 1024);
        lock (_collecting) // one collection at a time: observable families are cleared and refilled
        {
            MetricFamily[] families;
            lock (_families)
            {
                families = [.. _published];
            }

            foreach (MetricFamily family in families)
            {
                if (family.IsObservable)
                {
                    family.Clear();
                }
            }

            _listener.RecordObservableInstruments();
            foreach (MetricFamily family in families)
            {
                family.WriteTo(text);
            }
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    public void Dispose() => _listener.Dispose();
}
