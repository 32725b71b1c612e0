using Relayd.Hosting;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>The <c>[media]</c> table and <c>max_media_bytes</c>: every key reaches the options, bad values are named with key and line.</summary>
public sealed class MediaConfigTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void The_media_table_sets_the_spool_relative_to_the_file_and_every_limit()
    {
        RelayOptions options = RelayConfigLoader.Load(Write("""
            [media]
            spool_dir = "state/spool"
            max_bytes = 1048576
            spool_quota_bytes_per_partner = 4194304
            max_concurrent_transfers_per_partner = 3
            transfer_idle_timeout_ms = 2500
            window_bytes = 131072
            """, partnerExtra: "max_media_bytes = 5000"));

        Assert.Equal(Path.Combine(_pki.Directory, "state", "spool"), options.Media.SpoolDirectory);
        Assert.Equal(1024 * 1024, options.Media.MaxBytes);
        Assert.Equal(4 * 1024 * 1024, options.Media.SpoolQuotaBytesPerPartner);
        Assert.Equal(3, options.Media.MaxConcurrentTransfersPerPartner);
        Assert.Equal(TimeSpan.FromMilliseconds(2500), options.Media.TransferIdleTimeout);
        Assert.Equal(128 * 1024, options.Media.WindowBytes);
        Assert.Equal(5000, options.Partners[0].MaxMediaBytes);
    }

    [Fact]
    public void Without_a_media_table_blobs_are_spooled_in_var_lib_relayd_up_to_2_GiB()
    {
        RelayOptions options = RelayConfigLoader.Load(Write(""));

        Assert.Equal("/var/lib/relayd/spool", options.Media.SpoolDirectory);
        Assert.Equal(2L * 1024 * 1024 * 1024, options.Media.MaxBytes);
        Assert.Null(options.Partners[0].MaxMediaBytes);
    }

    [Fact]
    public void Bad_media_values_are_reported_with_key_and_line()
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(Write("""
            [media]
            window_bytes = 10
            max_bytes = 0
            spool = "typo"
            """));

        Assert.Contains(errors, e => e.Key == "media.window_bytes" && e.Line == 2);
        Assert.Contains(errors, e => e.Key == "media.max_bytes" && e.Line == 3);
        Assert.Contains(errors, e => e.Key == "media.spool" && e.Line == 4);
    }

    [Fact]
    public void The_packaged_config_with_its_media_table_is_valid()
    {
        string packaged = Path.Combine(RepositoryRoot(), "packaging", "relayd.toml");

        RelayOptions options = RelayConfigLoader.Parse(File.ReadAllText(packaged), "relayd.toml");

        Assert.Equal("/var/lib/relayd/spool", options.Media.SpoolDirectory);
    }

    private static string RepositoryRoot()
    {
        string? directory = AppContext.BaseDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "Relayd.sln")))
        {
            directory = Path.GetDirectoryName(directory);
        }

        return directory ?? throw new InvalidOperationException("Relayd.sln not found above " + AppContext.BaseDirectory);
    }

    private string Write(string mediaTable, string partnerExtra = "") => _pki.WriteMinimalConfig(mediaTable, partnerExtra);
}
