using Relayd.Hosting;
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
        Assert.Equal(5, result.StandardOutput.Split('\n').Count(l => l.TrimEnd().EndsWith("DELIVERED", StringComparison.Ordinal)));
        Assert.Contains("refused: MEDIA_DIGEST_MISMATCH", result.StandardOutput, StringComparison.Ordinal); // the proto's names, as in the docs
        Assert.DoesNotContain("MediaDigestMismatch", result.StandardOutput, StringComparison.Ordinal);
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

    [Fact]
    public async Task Check_config_syntax_only_passes_the_packaged_example_on_a_machine_without_its_files()
    {
        string packaged = Path.Combine(ExternalProcess.RepositoryRoot, "packaging", "relayd.toml");

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("check-config", "--syntax-only", "--config", packaged);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains($"{packaged}: OK", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_syntax_only_still_refuses_bad_values_but_not_missing_files()
    {
        string dir = Directory.CreateTempSubdirectory("relayd-config-").FullName;
        try
        {
            string config = Path.Combine(dir, "relayd.toml");
            await File.WriteAllTextAsync(config, """
                [tls]
                certificate = "/nonexistent/server.crt"
                key = "/nonexistent/server.key"
                partner_ca = "/nonexistent/ca.crt"

                [limits]
                max_frame_bytes = 10

                [[partners]]
                id = "alpha"
                """, TestContext.Current.CancellationToken);

            ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("check-config", "--syntax-only", "--config", config);

            string[] lines = CliAssert.Refusal(result, expectedExitCode: 78, lines: 2);
            Assert.StartsWith($"{config}:7: limits.max_frame_bytes: must be between", lines[0], StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_unknown_table_message_lists_every_table_there_is()
    {
        using var pki = new TestPki();

        ConfigError error = Assert.Single(RelayConfigLoader.Check(pki.WriteMinimalConfig("[storage]")));

        Assert.Equal("storage", error.Key);
        Assert.Equal("unknown table (expected [relay], [tls], [limits], [wal], [media], [metrics], [control], [interop], [health], [trace], [evidence] or [[partners]])", error.Message);
    }

    [Fact]
    public async Task Pki_issue_partner_refuses_a_bad_id_with_the_rule_in_one_line()
    {
        string dir = Directory.CreateTempSubdirectory("relayd-pki-").FullName;
        try
        {
            await ExternalProcess.RunRelaydAsync("pki", "init", "--dir", dir);

            ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("pki", "issue-partner", "--dir", dir, "--id", "Bad_ID");

            string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 64));
            Assert.Equal("relayd: partner id 'Bad_ID' must match ^[a-z0-9][a-z0-9._-]{0,62}$ (lower-case letters, digits, '.', '_', '-'; up to 63 characters, starting with a letter or digit)", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Dev_refuses_a_bad_partner_id_in_one_line_before_starting()
    {
        string dir = Directory.CreateTempSubdirectory("relayd-dev-").FullName;
        try
        {
            ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("dev", "--dir", dir, "--port", "0", "--partner", "Bad_ID");

            string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 64));
            Assert.StartsWith("relayd: partner id 'Bad_ID' must match", line, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("run")]
    [InlineData("check-config")]
    public async Task The_config_option_defaults_to_etc_relayd_and_is_not_called_required(string command)
    {
        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync(command, "--help");

        string option = Assert.Single(result.StandardOutput.Split('\n'), l => l.Contains("--config", StringComparison.Ordinal));
        Assert.Contains("[default: /etc/relayd/relayd.toml]", option, StringComparison.Ordinal);
        Assert.DoesNotContain("REQUIRED", option, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("check-config")]
    [InlineData("dev")]
    [InlineData("demo")]
    [InlineData("pki")]
    [InlineData("wal")]
    public async Task Every_command_has_help(string command)
    {
        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync(command, "--help");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("Usage:", result.StandardOutput, StringComparison.Ordinal);
    }
}
