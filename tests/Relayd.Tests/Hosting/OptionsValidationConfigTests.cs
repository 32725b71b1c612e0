using Relayd.Hosting;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// The checks on the whole options tree (partner ids, listen address, required TLS files) are the same for a TOML
/// file, <c>relayd dev</c> and options built in code: every problem named with its config key, in the loader's words.
/// </summary>
public sealed class OptionsValidationConfigTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void Options_built_in_code_get_every_problem_with_its_config_key_and_the_loaders_message()
    {
        Exception refused = Assert.ThrowsAny<Exception>(() => TestRelay.Start(_pki, options =>
        {
            options.Listen = "127.1:7443";
            options.Tls.KeyPath = "";
            options.Partners.Add(new PartnerOptions { Id = "beta" });
            options.Partners.Add(new PartnerOptions { Id = "Not Valid" });
            options.Partners.Add(new PartnerOptions());
        }));

        Assert.Contains("relay.listen: '127.1:7443' is not an address to listen on", refused.Message, StringComparison.Ordinal);
        Assert.Contains("tls.key: required", refused.Message, StringComparison.Ordinal);
        Assert.Contains("partners[3].id: duplicate partner id 'beta' (also partners[1])", refused.Message, StringComparison.Ordinal);
        Assert.Contains("partners[4].id: 'Not Valid' is not a valid partner id (expected ^[a-z0-9][a-z0-9._-]{0,62}$)", refused.Message, StringComparison.Ordinal);
        Assert.Contains("partners[5].id: required", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_without_partners_are_refused_as_a_file_without_partners_is()
    {
        Exception refused = Assert.ThrowsAny<Exception>(() => TestRelay.Start(_pki, o => o.Partners.Clear()));

        Assert.Contains("partners: at least one [[partners]] entry is required", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_names_the_same_problems_with_their_lines()
    {
        string config = _pki.WriteMinimalConfig("""
            [relay]
            listen = "127.1:7443"
            """, partnerExtra: """

            [[partners]]
            id = "alpha"

            [[partners]]
            id = "Not Valid"

            [[partners]]
            max_connections = 2
            """);

        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(config, checkFiles: false);

        Assert.Collection(
            errors,
            e => Assert.Equal((2, "relay.listen", "'127.1:7443' is not an address to listen on (expected \"ipv4:port\", \"[ipv6]:port\" or \"localhost:port\")"), (e.Line, e.Key, e.Message)),
            e => Assert.Equal((13, "partners[1].id", "duplicate partner id 'alpha' (also partners[0], line 10)"), (e.Line, e.Key, e.Message)),
            e => Assert.Equal((16, "partners[2].id", "'Not Valid' is not a valid partner id (expected ^[a-z0-9][a-z0-9._-]{0,62}$)"), (e.Line, e.Key, e.Message)),
            e => Assert.Equal((18, "partners[3].id", "required"), (e.Line, e.Key, e.Message)));
    }

    [Fact]
    public void A_partners_own_connection_limit_has_the_global_limits_bounds_in_code_too()
    {
        var partner = new PartnerOptions();

        Assert.Throws<ArgumentOutOfRangeException>(() => partner.MaxConnections = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => partner.MaxMediaBytes = 0);
        partner.MaxConnections = 10_000;
        partner.MaxMediaBytes = null;
        Assert.Equal(10_000, partner.MaxConnections);
    }
}
