using Relayd.Hosting;
using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Hosting;

/// <summary>The <c>[wal]</c> table: every key reaches the options, and a bad value is named with its key and line.</summary>
public sealed class WalConfigTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void The_wal_table_sets_the_log_directory_relative_to_the_file_and_its_tuning()
    {
        RelayOptions options = RelayConfigLoader.Load(Write("""
            [wal]
            dir = "state/wal"
            segment_bytes = 1048576
            reserve_bytes = 0
            sync = false
            commit_delay_us = 0
            retention_interval_ms = 250
            """));

        Assert.Equal(Path.Combine(_pki.Directory, "state", "wal"), options.Storage.Directory);
        Assert.Equal(1024 * 1024, options.Storage.SegmentBytes);
        Assert.Equal(0, options.Storage.ReserveBytes);
        Assert.False(options.Storage.Sync);
        Assert.Equal(TimeSpan.Zero, options.Storage.CommitDelay);
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.Storage.RetentionInterval);
    }

    [Fact]
    public void Without_a_wal_table_the_log_is_in_var_lib_relayd_and_synced()
    {
        RelayOptions options = RelayConfigLoader.Load(Write(""));

        Assert.Equal("/var/lib/relayd/wal", options.Storage.Directory);
        Assert.True(options.Storage.Sync);
    }

    [Fact]
    public void Bad_wal_values_are_reported_with_key_and_line()
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(Write("""
            [wal]
            segment_bytes = 1000
            sync = "yes"
            """));

        Assert.Contains(errors, e => e.Key == "wal.segment_bytes" && e.Line == 2 && e.Message.Contains("4096", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Key == "wal.sync" && e.Line == 3);
    }

    [Fact]
    public void The_wal_table_becomes_the_logs_own_options()
    {
        WalOptions tuned = RelayConfigLoader.Load(Write("""
            [wal]
            dir = "/srv/wal"
            segment_bytes = 1048576
            sync = false
            """)).Storage.ToWalOptions();
        WalOptions defaults = new StorageOptions().ToWalOptions();

        Assert.Equal(("/srv/wal", 1024 * 1024, 1024 * 1024, "write-without-sync"), (tuned.Directory, tuned.SegmentBytes, tuned.WriteBufferBytes, tuned.CommitPolicy.Name));
        Assert.Equal(("/var/lib/relayd/wal", 64 * 1024 * 1024, 4 * 1024 * 1024, "group-commit-delay-200us"), (defaults.Directory, defaults.SegmentBytes, defaults.WriteBufferBytes, defaults.CommitPolicy.Name));
        Assert.Equal("group-commit", new StorageOptions { CommitDelay = TimeSpan.Zero }.ToWalOptions().CommitPolicy.Name);
        Assert.Same(LibcFileSync.Instance, defaults.FileSync);
    }

    [Fact]
    public void A_blank_path_is_a_config_error_naming_its_key_not_a_stack_trace()
    {
        // Fuzzing found `spool_dir = " "`: the options setter's ArgumentException escaped the loader.
        ConfigException refused = Assert.Throws<ConfigException>(() => RelayConfigLoader.Load(Write("""
            [media]
            spool_dir = " "
            """)));

        ConfigError error = Assert.Single(refused.Errors);
        Assert.Equal("media.spool_dir", error.Key);
        Assert.Equal("must not be empty or blank", error.Message);
    }

    private string Write(string walTable) => _pki.WriteMinimalConfig(walTable);
}
