using System.Text.RegularExpressions;
using Relayd.Protocol.V1;

namespace Relayd;

/// <summary>
/// Everything the relay is configured with, as one tree: loaded from TOML by <c>Hosting.RelayConfigLoader</c> or built
/// in code (<c>relayd dev</c>, <c>relayd demo</c>, tests). Each setter rejects a value that cannot work on its own;
/// <see cref="Validate"/> checks the tree as a whole, the same way for every source.
/// </summary>
public sealed class RelayOptions
{
    /// <summary>Address and port to listen on, as "host:port" or "[v6]:port". Defaults to "0.0.0.0:7443".</summary>
    public string Listen { get; set; } = "0.0.0.0:7443";

    /// <summary>Name this relay gives itself in Welcome frames and logs. Defaults to the machine name.</summary>
    public string RelayId { get; set; } = Environment.MachineName;

    /// <summary>The relay's certificate and the partner CA. The three paths are required.</summary>
    public TlsOptions Tls { get; set; } = new();

    /// <summary>Approved partners, at least one. A certificate from the partner CA whose partner id is not listed is refused.</summary>
    public IList<PartnerOptions> Partners { get; } = new List<PartnerOptions>();

    /// <summary>Limits on partners, frames, queues and timeouts.</summary>
    public RelayLimits Limits { get; set; } = new();

    /// <summary>The write-ahead log: where envelopes are made durable before they are acknowledged.</summary>
    public StorageOptions Storage { get; set; } = new();

    /// <summary>Media transfers: the spool and the limits on blobs.</summary>
    public MediaOptions Media { get; set; } = new();

    /// <summary>The opt-in Prometheus and probe endpoint. Defaults to off.</summary>
    public MetricsOptions Metrics { get; set; } = new();

    /// <summary>The admin control socket (<c>relayd ctl</c>).</summary>
    public ControlOptions Control { get; set; } = new();

    /// <summary>The <c>[interop]</c> table: opt-in, content-kind policy, key bundles, rate limits, abuse reports.</summary>
    public InteropOptions Interop { get; set; } = new();

    /// <summary>Partner health (<c>relayd ctl health</c>, HealthRequest). Defaults to on.</summary>
    public HealthOptions Health { get; set; } = new();

    /// <summary>Per-message trace (<c>relayd ctl trace</c>, TraceRequest). Defaults to on.</summary>
    public TraceOptions Trace { get; set; } = new();
    /// <summary>Signed delivery evidence (docs/evidence.md). Defaults to off (no key).</summary>
    public EvidenceOptions Evidence { get; set; } = new();

    /// <summary>Throws when <see cref="Check"/> finds a problem; what every way of building options calls before a relay starts.</summary>
    /// <exception cref="RelayOptionsException">The options cannot work; its message lists every problem with its key.</exception>
    public void Validate()
    {
        IReadOnlyList<OptionsProblem> problems = Check();
        if (problems.Count > 0)
        {
            throw new RelayOptionsException(problems);
        }
    }

    /// <summary>
    /// Every problem of the tree as a whole, each named by its configuration key and worded as the loader reports it;
    /// empty when the options can work. Values on their own were checked by their setters already.
    /// </summary>
    /// <param name="lineOfKey">
    /// The 1-based line a key was set on, for a message that points at another key (a duplicate partner id); null when
    /// the options do not come from a file.
    /// </param>
    public IReadOnlyList<OptionsProblem> Check(Func<string, int>? lineOfKey = null)
    {
        var problems = new List<OptionsProblem>();
        try
        {
            ListenAddress.Parse(Listen);
        }
        catch (FormatException ex)
        {
            problems.Add(new OptionsProblem("relay.listen", ex.Message));
        }

        foreach ((string key, string path) in (ReadOnlySpan<(string, string)>)[("tls.certificate", Tls.CertificatePath), ("tls.key", Tls.KeyPath), ("tls.partner_ca", Tls.PartnerCaPath)])
        {
            if (string.IsNullOrEmpty(path))
            {
                problems.Add(new OptionsProblem(key, "required"));
            }
        }

        CheckPartners(problems, lineOfKey);
        Metrics.Check(problems);
        if (Trace.MaxBytes < 2L * Trace.SegmentBytes)
        {
            problems.Add(new OptionsProblem("trace.max_bytes", $"{Trace.MaxBytes} is less than twice trace.segment_bytes ({Trace.SegmentBytes}): the cap could not keep one closed segment beside the open one"));
        }
        return problems;
    }

    private void CheckPartners(List<OptionsProblem> problems, Func<string, int>? lineOfKey)
    {
        if (Partners.Count == 0)
        {
            problems.Add(new OptionsProblem("partners", "at least one [[partners]] entry is required"));
        }

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Partners.Count; i++)
        {
            string key = $"partners[{i}].id";
            string id = Partners[i].Id;
            if (id.Length == 0)
            {
                problems.Add(new OptionsProblem(key, "required"));
            }
            else if (!PartnerOptions.IsValidId(id))
            {
                problems.Add(new OptionsProblem(key, $"'{id}' is not a valid partner id (expected {PartnerOptions.IdPattern})"));
            }
            else if (!seen.TryAdd(id, i))
            {
                string first = $"partners[{seen[id]}]";
                string where = lineOfKey is null ? first : $"{first}, line {lineOfKey(first + ".id")}";
                problems.Add(new OptionsProblem(key, $"duplicate partner id '{id}' (also {where})"));
            }
        }
    }
}

/// <summary>Server certificate and partner trust.</summary>
public sealed class TlsOptions
{
    /// <summary>PEM file with the relay's certificate (and optionally its chain). Required.</summary>
    public string CertificatePath { get; set; } = "";

    /// <summary>PEM file with the relay's private key. Required.</summary>
    public string KeyPath { get; set; } = "";

    /// <summary>
    /// PEM bundle of the CA(s) that issue partner certificates. Partner chains are validated against these roots
    /// only; the system trust store is never consulted and nothing is fetched from the network. Required.
    /// </summary>
    public string PartnerCaPath { get; set; } = "";

    /// <summary>Optional PEM or DER CRL issued by the partner CA; when set, revoked partner certificates are refused. Defaults to null (none).</summary>
    public string? CrlPath { get; set; }
}

/// <summary>One approved partner.</summary>
public sealed partial class PartnerOptions
{
    /// <summary>What a partner id must match: it is a SAN URI path segment, a file name under the dev PKI and a log field.</summary>
    public const string IdPattern = "^[a-z0-9][a-z0-9._-]{0,62}$";

    private int? _maxConnections;
    private long? _maxMediaBytes;

    /// <summary>The id in the partner certificate's SAN URI <c>relayd://partner/&lt;id&gt;</c>; must match <see cref="IdPattern"/>. Required.</summary>
    public string Id { get; set; } = "";

    /// <summary>
    /// Per-partner override of <see cref="RelayLimits.MaxConnectionsPerPartner"/>, with the same bounds. Defaults to null
    /// (the global limit).
    /// </summary>
    public int? MaxConnections
    {
        get => _maxConnections;
        set => _maxConnections = value is null ? null : RelayLimits.CheckConnectionsPerPartner(value.Value, nameof(MaxConnections));
    }

    /// <summary>Content kinds this partner's users can receive. Defaults to empty (every kind).</summary>
    public IList<ContentKind> AcceptedKinds { get; } = new List<ContentKind>();

    /// <summary>
    /// Per-partner override of <see cref="MediaOptions.MaxBytes"/> (largest blob this partner may send), with the same
    /// bounds. Defaults to null (the global limit).
    /// </summary>
    public long? MaxMediaBytes
    {
        get => _maxMediaBytes;
        set => _maxMediaBytes = value is null ? null : MediaOptions.CheckMaxBytes(value.Value, nameof(MaxMediaBytes));
    }

    /// <summary>Whether <paramref name="id"/> matches <see cref="IdPattern"/> (a trailing newline does not).</summary>
    public static bool IsValidId(string id) => IdRegex().IsMatch(id);

    // \z rather than the pattern's $, which would also accept a trailing newline.
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}\\z")]
    private static partial Regex IdRegex();
}
