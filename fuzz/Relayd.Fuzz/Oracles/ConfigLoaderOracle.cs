using System.Text;
using Relayd.Hosting;

namespace Relayd.Fuzz.Oracles;

/// <summary>
/// <see cref="RelayConfigLoader.Parse"/> takes any text: it returns options that keep the loader's promises (at
/// least one partner, valid and unique ids, the three TLS files named), or throws <see cref="ConfigException"/>
/// naming at least one problem. Any other exception would reach <c>relayd run</c> or <c>check-config</c> as a stack
/// trace.
/// </summary>
internal static class ConfigLoaderOracle
{
    /// <summary>A rooted source name, so relative paths in the text are resolved as for a real file.</summary>
    private const string Source = "/etc/relayd/relayd.toml";

    public static void Check(byte[] input)
    {
        string text = Encoding.UTF8.GetString(input);
        RelayOptions options;
        try
        {
            options = RelayConfigLoader.Parse(text, Source);
        }
        catch (ConfigException ex)
        {
            if (ex.Errors.Count == 0 || ex.Errors.Any(e => e.Message.Length == 0))
            {
                throw new OracleViolationException($"a ConfigException without a reason: {ex.Message}", ex);
            }

            return;
        }

        if (options.Partners.Count == 0)
        {
            throw new OracleViolationException("accepted a configuration without partners");
        }

        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (PartnerOptions partner in options.Partners)
        {
            if (!IsPartnerId(partner.Id) || !ids.Add(partner.Id))
            {
                throw new OracleViolationException($"accepted a partner id that is invalid or not unique: \"{partner.Id.ReplaceLineEndings("\\n")}\"");
            }
        }

        TlsOptions tls = options.Tls;
        if (tls.CertificatePath.Length == 0 || tls.KeyPath.Length == 0 || tls.PartnerCaPath.Length == 0)
        {
            throw new OracleViolationException("accepted a configuration that does not name the certificate, key and partner CA");
        }
    }

    /// <summary>The documented rule, ^[a-z0-9][a-z0-9._-]{0,62}$, spelled out character by character.</summary>
    private static bool IsPartnerId(string id) =>
        id.Length is >= 1 and <= 63 && IsLowerOrDigit(id[0]) && id.All(c => IsLowerOrDigit(c) || c is '.' or '_' or '-');

    private static bool IsLowerOrDigit(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9');
}
