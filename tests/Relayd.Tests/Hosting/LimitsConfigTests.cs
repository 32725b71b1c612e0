using Relayd.Hosting;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// Every duration and size has an upper bound, checked when the file is read: a value the relay cannot use is refused
/// with its key, its line and the allowed range, instead of a relay that starts and then hangs or throws.
/// </summary>
public sealed class LimitsConfigTests : IDisposable
{
    private const string Huge = "9000000000000";
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Theory]
    [InlineData("limits", "handshake_timeout_ms")]
    [InlineData("limits", "idle_timeout_ms")]
    [InlineData("limits", "shutdown_timeout_ms")]
    [InlineData("limits", "retry_after_ms")]
    [InlineData("limits", "max_queued_bytes_per_partner")]
    [InlineData("limits", "dedup_window_seconds")]
    [InlineData("limits", "default_retention_seconds")]
    [InlineData("wal", "reserve_bytes")]
    [InlineData("wal", "retention_interval_ms")]
    [InlineData("wal", "commit_delay_us")]
    [InlineData("media", "max_bytes")]
    [InlineData("media", "spool_quota_bytes_per_partner", "9000000000000000")] // above its 1 PiB bound
    [InlineData("limits", "idle_timeout_ms", "9223372036854775807")] // beyond TimeSpan's range too
    [InlineData("media", "transfer_idle_timeout_ms")]
    public void A_value_above_the_upper_bound_is_refused_with_its_key_line_and_range(string table, string key, string value = Huge)
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(_pki.WriteMinimalConfig($"""
            [{table}]
            {key} = {value}
            """));

        ConfigError error = Assert.Single(errors);
        Assert.Equal($"{table}.{key}", error.Key);
        Assert.Equal(2, error.Line);
        Assert.Contains("must be between", error.Message, StringComparison.Ordinal);
        Assert.Contains($"(got {value})", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_partners_media_limit_has_the_same_upper_bound_as_the_global_one()
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(_pki.WriteMinimalConfig("", partnerExtra: $"max_media_bytes = {Huge}"));

        ConfigError error = Assert.Single(errors);
        Assert.Equal("partners[0].max_media_bytes", error.Key);
        Assert.Contains("must be between", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_largest_allowed_values_load()
    {
        RelayOptions options = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [limits]
            handshake_timeout_ms = 600000
            idle_timeout_ms = 86400000
            shutdown_timeout_ms = 3600000
            retry_after_ms = 3600000
            dedup_window_seconds = 31536000
            default_retention_seconds = 31536000
            """));

        Assert.Equal(TimeSpan.FromMinutes(10), options.Limits.HandshakeTimeout);
        Assert.Equal(TimeSpan.FromDays(1), options.Limits.IdleTimeout);
        Assert.Equal(TimeSpan.FromHours(1), options.Limits.ShutdownTimeout);
        Assert.Equal(TimeSpan.FromHours(1), options.Limits.QueueFullRetryAfter);
        Assert.Equal(TimeSpan.FromDays(365), options.Limits.DedupWindow);
        Assert.Equal(TimeSpan.FromDays(365), options.Limits.DefaultRetention);
    }

    [Fact]
    public async Task Check_config_refuses_the_timeouts_that_used_to_break_the_relay_only_at_run_time()
    {
        string config = _pki.WriteMinimalConfig($"""
            [limits]
            handshake_timeout_ms = {Huge}
            shutdown_timeout_ms = {Huge}
            idle_timeout_ms = {Huge}
            """);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("check-config", "--config", config);

        string[] lines = CliAssert.Refusal(result, expectedExitCode: 78, lines: 4);
        Assert.Contains($"{config}:2: limits.handshake_timeout_ms: must be between", lines[0], StringComparison.Ordinal);
        Assert.Contains($"{config}:3: limits.shutdown_timeout_ms: must be between", lines[1], StringComparison.Ordinal);
        Assert.Contains($"{config}:4: limits.idle_timeout_ms: must be between", lines[2], StringComparison.Ordinal);
    }

    [Fact]
    public void The_retry_after_key_sets_the_retry_after_of_every_retryable_refusal()
    {
        RelayOptions options = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [limits]
            retry_after_ms = 900
            """));

        Assert.Equal(TimeSpan.FromMilliseconds(900), options.Limits.QueueFullRetryAfter);
    }

    [Fact]
    public void The_old_name_of_retry_after_ms_still_works_with_a_warning_naming_the_new_key()
    {
        string config = _pki.WriteMinimalConfig("""
            [limits]
            queue_full_retry_after_ms = 900
            """);

        RelayOptions options = RelayConfigLoader.Load(config, out IReadOnlyList<ConfigError> warnings);
        IReadOnlyList<ConfigError> checkedProblems = RelayConfigLoader.Check(config);

        Assert.Equal(TimeSpan.FromMilliseconds(900), options.Limits.QueueFullRetryAfter);
        ConfigError warning = Assert.Single(warnings);
        Assert.True(warning.IsWarning);
        Assert.Equal("limits.queue_full_retry_after_ms", warning.Key);
        Assert.Equal(2, warning.Line);
        Assert.Contains("limits.retry_after_ms", warning.Message, StringComparison.Ordinal);
        Assert.Equal(warning, Assert.Single(checkedProblems));
    }

    [Fact]
    public void Setting_retry_after_ms_under_both_names_is_an_error()
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(_pki.WriteMinimalConfig("""
            [limits]
            retry_after_ms = 900
            queue_full_retry_after_ms = 250
            """));

        Assert.Contains(errors, e => !e.IsWarning && e.Key == "limits.queue_full_retry_after_ms" && e.Line == 3 && e.Message.Contains("limits.retry_after_ms", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Check_config_prints_the_renamed_key_warning_and_still_passes()
    {
        string config = _pki.WriteMinimalConfig("""
            [limits]
            queue_full_retry_after_ms = 900
            """);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("check-config", "--config", config);

        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Contains($"{config}:2: limits.queue_full_retry_after_ms: warning: renamed to limits.retry_after_ms", result.StandardError, StringComparison.Ordinal);
        Assert.Contains("OK", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public void The_listen_backlog_is_read_and_bounded_by_what_listen_takes()
    {
        RelayOptions options = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [limits]
            listen_backlog = 77
            """));
        ConfigError error = Assert.Single(RelayConfigLoader.Check(_pki.WriteMinimalConfig("""
            [limits]
            listen_backlog = 70000
            """)));

        Assert.Equal(77, options.Limits.ListenBacklog);
        Assert.Equal(("limits.listen_backlog", 2, "must be between 1 and 65535 (got 70000)"), (error.Key, error.Line, error.Message));
    }

    [Fact]
    public async Task The_listening_socket_has_the_configured_backlog()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.ListenBacklog = 77);

        // For a listening socket ss shows the backlog as Send-Q.
        ExternalProcess.Result result = await ExternalProcess.RunAsync("ss", ["-Hltn", $"sport = :{relay.Port}"]);

        string[] columns = Assert.Single(result.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(("LISTEN", "77"), (columns[0], columns[2]));
    }
}
