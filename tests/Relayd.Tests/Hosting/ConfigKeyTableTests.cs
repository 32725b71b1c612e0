using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Relayd.Hosting;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// packaging/relayd.toml is what an admin reads to learn the keys: it lists every key the loader knows (commented out
/// or not), each with the default the options really have, and nothing the loader would refuse.
/// </summary>
public sealed partial class ConfigKeyTableTests
{
    // Keys without one default that the file could show (the machine name, required paths, names): the file shows
    // an example for these, and only their presence is checked.
    private static readonly HashSet<string> ExampleOnly = new(StringComparer.Ordinal)
    {
        "relay.relay_id", "tls.certificate", "tls.key", "tls.partner_ca", "tls.crl", "partners[].id", "evidence.key", "evidence.dir",
    };

    // Enough for the loader to accept a file: every required key, then one partner (whose table comes last, so a
    // partner's key can follow it).
    private const string Tls = """

        [tls]
        certificate = "/etc/relayd/tls/server.crt"
        key = "/etc/relayd/tls/server.key"
        partner_ca = "/etc/relayd/tls/partner-ca.crt"

        [[partners]]
        id = "alpha"

        """;

    private const string Source = "/etc/relayd/relayd.toml";

    private static readonly string PackagedPath = Path.Combine(ExternalProcess.RepositoryRoot, "packaging", "relayd.toml");

    [Fact]
    public void Every_key_the_loader_reads_is_in_the_packaged_config()
    {
        HashSet<string> documented = [.. PackagedKeys().Select(k => k.Key)];

        string[] missing = [.. RelayConfigLoader.Keys.Where(k => !documented.Contains(k)).Order(StringComparer.Ordinal)];

        Assert.True(missing.Length == 0, $"keys the loader reads but packaging/relayd.toml does not show: {string.Join(", ", missing)}");
    }

    [Fact]
    public void Every_key_in_the_packaged_config_is_read_by_the_loader()
    {
        HashSet<string> known = [.. RelayConfigLoader.Keys];

        string[] unknown = [.. PackagedKeys().Where(k => !known.Contains(k.Key)).Select(k => $"{k.Key} (line {k.Line})")];

        Assert.True(unknown.Length == 0, $"keys in packaging/relayd.toml the loader does not know: {string.Join(", ", unknown)}");
    }

    [Fact]
    public void Every_value_the_packaged_config_shows_is_the_options_default()
    {
        Dictionary<string, string> defaults = Snapshot(RelayConfigLoader.Parse(Tls, Source));
        var drift = new List<string>();
        foreach (PackagedKey key in PackagedKeys().Where(k => !ExampleOnly.Contains(k.Key) && RelayConfigLoader.Keys.Contains(k.Key)))
        {
            int dot = key.Key.IndexOf('.', StringComparison.Ordinal);
            string table = key.Key[..dot];
            string line = $"{key.Key[(dot + 1)..]} = {key.Value}\n";
            string text = table == "partners[]" ? Tls + line : $"[{table}]\n{line}{Tls}";
            Dictionary<string, string> set = Snapshot(RelayConfigLoader.Parse(text, Source));
            drift.AddRange(set.Where(p => defaults[p.Key] != p.Value)
                .Select(p => $"line {key.Line}: {key.Key} = {key.Value} sets {p.Key} to {p.Value}, but its default is {defaults[p.Key]}"));
        }

        Assert.True(drift.Count == 0, "packaging/relayd.toml shows values that are not the defaults:\n" + string.Join("\n", drift));
    }

    /// <summary>Every <c>key = value</c> of the packaged file, commented out or not, with its table's key path.</summary>
    private static List<PackagedKey> PackagedKeys()
    {
        var keys = new List<PackagedKey>();
        string table = "";
        string[] lines = File.ReadAllLines(PackagedPath);
        for (int i = 0; i < lines.Length; i++)
        {
            if (TableLine().Match(lines[i]) is { Success: true } header)
            {
                table = header.Groups["array"].Success ? header.Groups["name"].Value + "[]" : header.Groups["name"].Value;
            }
            else if (KeyLine().Match(lines[i]) is { Success: true } entry)
            {
                keys.Add(new PackagedKey($"{table}.{entry.Groups["key"].Value}", entry.Groups["value"].Value, i + 1));
            }
        }

        Assert.NotEmpty(keys); // the patterns below still match the file's layout
        return keys;
    }

    /// <summary>
    /// Every setting of the options tree that has one value, formatted invariantly, and what the first partner gets
    /// (its own setting, else the global one it defaults to).
    /// </summary>
    private static Dictionary<string, string> Snapshot(RelayOptions options)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string prefix, object settings)
        {
            foreach (PropertyInfo property in settings.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
            {
                object? value = property.GetValue(settings);
                if (value is null or string or bool or ValueType)
                {
                    values[prefix + property.Name] = Invariant(value);
                }
            }
        }

        Add("", options);
        Add("Limits.", options.Limits);
        Add("Storage.", options.Storage);
        Add("Media.", options.Media);
        Add("Metrics.", options.Metrics);
        Add("Interop.", options.Interop);
        Add("Trace.", options.Trace);
        Add("Evidence.", options.Evidence);
        PartnerOptions partner = options.Partners[0];
        values["Partners[0].MaxConnections"] = Invariant(partner.MaxConnections ?? options.Limits.MaxConnectionsPerPartner);
        values["Partners[0].MaxMediaBytes"] = Invariant(partner.MaxMediaBytes ?? options.Media.MaxBytes);
        values["Partners[0].RateLimits"] = RateLimitSettings.Resolve(options.Interop, partner).ToString();
        values["Partners[0].AcceptedKinds"] = partner.AcceptedKinds.Count == 0 ? "every kind"
            : partner.AcceptedKinds.Count == Enum.GetValues<Protocol.V1.ContentKind>().Length - 1 ? "every kind" // all but UNSPECIFIED
            : string.Join(",", partner.AcceptedKinds);
        return values;
    }

    private static string Invariant(object? value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null";

    private sealed record PackagedKey(string Key, string Value, int Line);

    // "[limits]", "[[partners]]", "# [[partners]]" (an example partner, commented out).
    [GeneratedRegex(@"^#?\s*(?<array>\[)?\[(?<name>[a-z_]+)\]\]?\s*$")]
    private static partial Regex TableLine();

    // "key = value" or "# key = value" (a key shown with its default, commented out).
    [GeneratedRegex(@"^#?\s*(?<key>[a-z_]+)\s*=\s*(?<value>.+?)\s*$")]
    private static partial Regex KeyLine();
}
