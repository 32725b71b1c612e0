using Relayd.Hosting;

namespace Relayd.Tests.Diagnostics.Prometheus;

/// <summary>The <c>[metrics]</c> table as <c>relayd check-config</c> reads it: off by default, an address checked, a non-loopback one warned about.</summary>
public sealed class MetricsConfigTests
{
    private const string Required = """
        [tls]
        certificate = "/etc/relayd/tls/server.crt"
        key = "/etc/relayd/tls/server.key"
        partner_ca = "/etc/relayd/tls/partner-ca.crt"

        [[partners]]
        id = "alpha"
        """;

    [Fact]
    public void Without_the_table_there_is_no_endpoint()
    {
        RelayOptions options = RelayConfigLoader.Parse(Required, "/etc/relayd/relayd.toml");

        Assert.False(options.Metrics.Enabled);
        Assert.Empty(Check(""));
    }

    [Fact]
    public void A_loopback_address_is_taken_as_it_is()
    {
        RelayOptions options = RelayConfigLoader.Parse("[metrics]\nlisten = \"127.0.0.1:9464\"\n" + Required, "/etc/relayd/relayd.toml");

        Assert.Equal("127.0.0.1:9464", options.Metrics.Listen);
        Assert.Empty(Check("[metrics]\nlisten = \"127.0.0.1:9464\"\n"));
        Assert.Empty(Check("[metrics]\nlisten = \"[::1]:9464\"\n"));
    }

    [Fact]
    public void A_non_loopback_address_works_with_a_warning_naming_the_key_and_line()
    {
        ConfigError warning = Assert.Single(Check("\n[metrics]\nlisten = \"0.0.0.0:9464\"\n"));

        Assert.True(warning.IsWarning);
        Assert.Equal(("metrics.listen", 3), (warning.Key, warning.Line));
        Assert.Contains("not a loopback address", warning.Message, StringComparison.Ordinal);
        Assert.Contains("no authentication", warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("listen = \"9464\"", "metrics.listen", "is not an address to listen on")]
    [InlineData("listen = 9464", "metrics.listen", "expected a string")]
    [InlineData("port = 9464", "metrics.port", "unknown key")]
    public void A_bad_key_or_value_is_an_error_naming_the_key(string line, string key, string message)
    {
        ConfigError error = Assert.Single(Check($"[metrics]\n{line}\n"));

        Assert.False(error.IsWarning);
        Assert.Equal(key, error.Key);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    private static IReadOnlyList<ConfigError> Check(string metricsTable)
    {
        string path = Path.Combine(Path.GetTempPath(), $"relayd-metrics-config-{Guid.NewGuid():N}.toml");
        File.WriteAllText(path, metricsTable + Required);
        try
        {
            return RelayConfigLoader.Check(path, checkFiles: false);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
