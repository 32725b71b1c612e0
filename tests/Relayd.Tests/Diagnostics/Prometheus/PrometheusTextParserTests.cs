namespace Relayd.Tests.Diagnostics.Prometheus;

/// <summary>The tests' strict reader of the text format rejects what Prometheus would (so a scrape that passes it means something).</summary>
public sealed class PrometheusTextParserTests
{
    private const string Valid = """
        # HELP relayd_x_total Things, with a \\ and a \n in the help
        # TYPE relayd_x_total counter
        relayd_x_total{partner="al\"pha",code="A"} 3
        relayd_x_total{partner="beta"} 1e3
        # TYPE relayd_h_seconds histogram
        relayd_h_seconds_bucket{le="0.5"} 1
        relayd_h_seconds_bucket{le="+Inf"} 2
        relayd_h_seconds_sum 0.75
        relayd_h_seconds_count 2

        """;

    [Fact]
    public void A_valid_exposition_is_read_with_its_escapes()
    {
        PrometheusScrape scrape = PrometheusTextParser.Parse(Valid);

        Assert.Equal(3, scrape.Value("relayd_x_total", ("partner", "al\"pha")));
        Assert.Equal(1000, scrape.Value("relayd_x_total", ("partner", "beta")));
        Assert.Equal("Things, with a \\ and a \n in the help", scrape.Families["relayd_x_total"].Help);
        Assert.Equal(2, scrape.Value("relayd_h_seconds_count"));
    }

    [Theory]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "relayd_x_total{partner=\"beta\"} 1e3 \n", "at most a timestamp")]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "relayd_x_total{partner=\"beta\"} 1e3\nrelayd_x_total{partner=\"beta\"} 2\n", "twice")]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "relayd_x_total{partner=beta} 1\n", "expected =\"")]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "relayd_x_total{partner=\"b\\ta\"} 1\n", "unknown escape")]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "relayd_x_total{partner=\"beta\"} one\n", "not a float")]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "relayd_x_total{partner=\"beta\"} -1\n", "counter")]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "1relayd{partner=\"beta\"} 1\n", "no metric name")]
    [InlineData("relayd_x_total{partner=\"beta\"} 1e3\n", "relayd_other 1\n", "not of the family")]
    [InlineData("relayd_h_seconds_bucket{le=\"+Inf\"} 2\n", "relayd_h_seconds_bucket{le=\"+Inf\"} 3\n", "_count")]
    [InlineData("relayd_h_seconds_bucket{le=\"0.5\"} 1\n", "relayd_h_seconds_bucket{le=\"0.5\"} 5\n", "fewer than")]
    [InlineData("relayd_h_seconds_bucket{le=\"+Inf\"} 2\n", "", "last bucket")]
    [InlineData("# TYPE relayd_x_total counter\n", "# TYPE relayd_x counter\n", "_total")]
    public void A_breach_of_the_format_is_refused_naming_it(string replace, string with, string expected)
    {
        string broken = Valid.Replace(replace, with, StringComparison.Ordinal);
        Assert.NotEqual(Valid, broken);

        FormatException error = Assert.Throws<FormatException>(() => PrometheusTextParser.Parse(broken));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
