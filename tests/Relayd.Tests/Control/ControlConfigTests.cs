using Relayd.Hosting;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Control;

/// <summary>The <c>[control]</c> table: its keys, their defaults, and a bad value named by key and line.</summary>
public sealed class ControlConfigTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ControlConfigTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public void Without_a_control_table_the_socket_is_the_systemd_runtime_directorys_and_no_group_is_allowed()
    {
        RelayOptions options = RelayConfigLoader.Load(_pki.WriteMinimalConfig(""));

        Assert.Equal("/run/relayd/control.sock", options.Control.SocketPath);
        Assert.Null(options.Control.Group);
    }

    [Fact]
    public void A_relative_socket_path_is_resolved_against_the_config_files_directory_and_the_group_is_kept()
    {
        string path = _pki.WriteMinimalConfig("""
            [control]
            socket = "run/control.sock"
            group = "relayd-admin"
            """);

        RelayOptions options = RelayConfigLoader.Load(path);

        Assert.Equal(Path.Combine(Path.GetDirectoryName(path)!, "run", "control.sock"), options.Control.SocketPath);
        Assert.Equal("relayd-admin", options.Control.Group);
    }

    [Fact]
    public void A_group_that_is_not_a_group_name_is_refused_with_its_key()
    {
        ConfigError error = Assert.Single(RelayConfigLoader.Check(_pki.WriteMinimalConfig("""
            [control]
            group = "admins; rm -rf /"
            """)));

        Assert.Equal("control.group", error.Key);
        Assert.Equal(2, error.Line); // the line of the key in the file
        Assert.Contains("is not a group name", error.Message, StringComparison.Ordinal);
    }
}
