using System.Diagnostics.Metrics;
using System.Text;
using Relayd.Diagnostics;
using Relayd.Diagnostics.Prometheus;

namespace Relayd.Tests.Diagnostics.Prometheus;

/// <summary>The exporter on its own: names and units converted, buckets filled where the values fall, labels escaped, gauges read afresh.</summary>
public sealed class PrometheusExporterTests
{
    [Fact]
    public void Millisecond_histograms_are_exported_in_seconds_each_value_in_the_first_bucket_whose_bound_it_does_not_exceed()
    {
        using var metrics = new RelayMetrics();
        using var exporter = new PrometheusExporter(metrics.Meter);

        metrics.WalSyncDuration.Record(0.05);  // exactly the first bound, 50 µs: le is "less or equal"
        metrics.WalSyncDuration.Record(0.3);   // 300 µs: above 250 µs, within 500 µs
        metrics.WalSyncDuration.Record(20000); // 20 s: beyond the last bound
        PrometheusScrape scrape = PrometheusTextParser.Parse(Encoding.UTF8.GetString(exporter.Collect()));

        Assert.Equal(1, scrape.Value("relayd_wal_sync_duration_seconds_bucket", ("le", "5E-05")));
        Assert.Equal(1, scrape.Value("relayd_wal_sync_duration_seconds_bucket", ("le", "0.00025")));
        Assert.Equal(2, scrape.Value("relayd_wal_sync_duration_seconds_bucket", ("le", "0.0005")));
        Assert.Equal(2, scrape.Value("relayd_wal_sync_duration_seconds_bucket", ("le", "10")));
        Assert.Equal(3, scrape.Value("relayd_wal_sync_duration_seconds_bucket", ("le", "+Inf")));
        Assert.Equal(3, scrape.Value("relayd_wal_sync_duration_seconds_count"));
        Assert.Equal(20.00035, scrape.Value("relayd_wal_sync_duration_seconds_sum"), 9);
        Assert.Equal("histogram", scrape.Families["relayd_wal_sync_duration_seconds"].Type);
    }

    [Fact]
    public void Tag_values_are_escaped_and_tags_given_in_either_order_make_one_series()
    {
        using var meter = new Meter("Relayd");
        using var exporter = new PrometheusExporter(meter);
        Counter<long> counter = meter.CreateCounter<long>("relayd.test.things", "By", "Things\nwith a \\ in the help");

        counter.Add(2, new("b.key", "x"), new("a", "quote \" backslash \\ newline \n end"));
        counter.Add(3, new("a", "quote \" backslash \\ newline \n end"), new("b.key", "x"));
        string text = Encoding.UTF8.GetString(exporter.Collect());
        PrometheusScrape scrape = PrometheusTextParser.Parse(text);

        Assert.Equal(5, scrape.Value("relayd_test_things_bytes_total", ("a", "quote \" backslash \\ newline \n end"), ("b_key", "x")));
        Assert.Equal("Things\nwith a \\ in the help", scrape.Families["relayd_test_things_bytes_total"].Help);
        Assert.Contains("relayd_test_things_bytes_total{a=\"quote \\\" backslash \\\\ newline \\n end\",b_key=\"x\"} 5\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Observable_gauges_are_read_at_each_collection_and_a_series_no_longer_reported_is_gone()
    {
        using var metrics = new RelayMetrics();
        using var exporter = new PrometheusExporter(metrics.Meter);
        Measurement<long>[] backlog = [new(4, RelayMetrics.PartnerTag("alpha"), new("held", "memory")), new(1, RelayMetrics.PartnerTag("beta"), new("held", "memory"))];
        metrics.ObserveBacklog(() => backlog);

        PrometheusScrape first = PrometheusTextParser.Parse(Encoding.UTF8.GetString(exporter.Collect()));
        backlog = [new(6, RelayMetrics.PartnerTag("alpha"), new("held", "memory"))];
        PrometheusScrape second = PrometheusTextParser.Parse(Encoding.UTF8.GetString(exporter.Collect()));

        Assert.Equal(4, first.Value("relayd_backlog_envelopes", ("partner", "alpha")));
        Assert.Equal(1, first.Value("relayd_backlog_envelopes", ("partner", "beta")));
        Assert.Equal(6, second.Value("relayd_backlog_envelopes", ("partner", "alpha")));
        Assert.DoesNotContain(second.Samples, s => s.Has(("partner", "beta")));
        Assert.Equal("gauge", second.Families["relayd_backlog_envelopes"].Type);
    }

    [Fact]
    public void Another_meter_of_the_same_name_is_not_exported()
    {
        using var mine = new RelayMetrics();
        using var other = new RelayMetrics(); // a second relay in the process
        using var exporter = new PrometheusExporter(mine.Meter);

        other.AcksSent.Add(9);
        mine.AcksSent.Add(2);
        PrometheusScrape scrape = PrometheusTextParser.Parse(Encoding.UTF8.GetString(exporter.Collect()));

        Assert.Equal(2, scrape.Value("relayd_acks_sent_total"));
    }
}
