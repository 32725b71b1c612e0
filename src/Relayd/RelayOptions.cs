using Relayd.Protocol.V1;

namespace Relayd;

/// <summary>Everything the relay is configured with; loaded from TOML by <c>Hosting.RelayConfigLoader</c>.</summary>
public sealed class RelayOptions
{
    /// <summary>Address and port to listen on, as "host:port" or "[v6]:port". Defaults to "0.0.0.0:7443".</summary>
    public string Listen { get; set; } = "0.0.0.0:7443";

    /// <summary>Name this relay gives itself in Welcome frames and logs. Defaults to the machine name.</summary>
    public string RelayId { get; set; } = Environment.MachineName;

    public TlsOptions Tls { get; set; } = new();

    /// <summary>Approved partners. A certificate from the partner CA whose partner id is not listed is refused.</summary>
    public IList<PartnerOptions> Partners { get; } = new List<PartnerOptions>();

    public RelayLimits Limits { get; set; } = new();

    /// <summary>The write-ahead log: where envelopes are made durable before they are acknowledged.</summary>
    public StorageOptions Storage { get; set; } = new();

    public MediaOptions Media { get; set; } = new();
}

/// <summary>Server certificate and partner trust.</summary>
public sealed class TlsOptions
{
    /// <summary>PEM file with the relay's certificate (and optionally its chain).</summary>
    public string CertificatePath { get; set; } = "";

    /// <summary>PEM file with the relay's private key.</summary>
    public string KeyPath { get; set; } = "";

    /// <summary>
    /// PEM bundle of the CA(s) that issue partner certificates. Partner chains are validated against these roots
    /// only; the system trust store is never consulted and nothing is fetched from the network.
    /// </summary>
    public string PartnerCaPath { get; set; } = "";

    /// <summary>Optional PEM or DER CRL issued by the partner CA; when set, revoked partner certificates are refused.</summary>
    public string? CrlPath { get; set; }
}

/// <summary>One approved partner.</summary>
public sealed class PartnerOptions
{
    /// <summary>The id in the partner certificate's SAN URI <c>relayd://partner/&lt;id&gt;</c>.</summary>
    public string Id { get; set; } = "";

    /// <summary>Per-partner override of <see cref="RelayLimits.MaxConnectionsPerPartner"/>; null = the global limit.</summary>
    public int? MaxConnections { get; set; }

    /// <summary>Content kinds this partner's users can receive; empty = all kinds.</summary>
    public IList<ContentKind> AcceptedKinds { get; } = new List<ContentKind>();

    /// <summary>Per-partner override of <see cref="MediaOptions.MaxBytes"/> (largest blob this partner may send); null = the global limit.</summary>
    public long? MaxMediaBytes { get; set; }
}
