using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>relayd as a real process: the demo, the config checker, the PKI commands, --help.</summary>
public sealed class CommandLineTests
{
    [Fact]
    public async Task Relayd_demo_shows_each_envelope_delivered_with_a_receipt_and_a_throughput_figure_and_exits_0()
    {
        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("demo", "--count", "5000");

        Assert.True(result.ExitCode == 0, result.StandardOutput + result.StandardError);
        Assert.Equal(5, result.StandardOutput.Split('\n').Count(l => l.TrimEnd().EndsWith("Delivered", StringComparison.Ordinal)));
        Assert.Contains("throughput:", result.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("demo: OK", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_rejects_a_broken_file_naming_the_key_and_its_line()
    {
        using var pki = new TestPki();
        string config = Path.Combine(pki.Directory, "relayd.toml");
        await File.WriteAllTextAsync(config, $"""
            [relay]
            listen = "127.0.0.1:7443"

            [tls]
            certificate = "{pki.ServerCertPath}"
            key = "{pki.ServerKeyPath}"
            partner_ca = "{pki.CaPath}"

            [limits]
            max_frame_bytes = "big"

            [[partners]]
            id = "alpha"
            """, TestContext.Current.CancellationToken);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("check-config", "--config", config);

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("limits.max_frame_bytes", result.StandardError, StringComparison.Ordinal);
        Assert.Contains(":10:", result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_accepts_a_valid_file()
    {
        using var pki = new TestPki();
        string config = Path.Combine(pki.Directory, "relayd.toml");
        await File.WriteAllTextAsync(config, $"""
            [tls]
            certificate = "{pki.ServerCertPath}"
            key = "{pki.ServerKeyPath}"
            partner_ca = "{pki.CaPath}"

            [[partners]]
            id = "alpha"
            """, TestContext.Current.CancellationToken);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("check-config", "--config", config);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains("OK", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pki_init_and_issue_partner_write_a_CA_a_server_certificate_and_a_partner_certificate()
    {
        string dir = Directory.CreateTempSubdirectory("relayd-pki-").FullName;
        try
        {
            ExternalProcess.Result init = await ExternalProcess.RunRelaydAsync("pki", "init", "--dir", dir);
            ExternalProcess.Result issue = await ExternalProcess.RunRelaydAsync("pki", "issue-partner", "--dir", dir, "--id", "alpha");
            ExternalProcess.Result openssl = await ExternalProcess.RunAsync("openssl", ["x509", "-in", Path.Combine(dir, "partners", "alpha.crt"), "-noout", "-text"]);

            Assert.Equal(0, init.ExitCode);
            Assert.Equal(0, issue.ExitCode);
            Assert.True(File.Exists(Path.Combine(dir, "ca.crt")));
            Assert.True(File.Exists(Path.Combine(dir, "server.key")));
            Assert.Contains("URI:relayd://partner/alpha", openssl.StandardOutput, StringComparison.Ordinal);
            Assert.Contains("TLS Web Client Authentication", openssl.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("run")]
    [InlineData("check-config")]
    [InlineData("dev")]
    [InlineData("demo")]
    [InlineData("pki")]
    public async Task Every_command_has_help(string command)
    {
        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync(command, "--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Usage:", result.StandardOutput, StringComparison.Ordinal);
    }
}
