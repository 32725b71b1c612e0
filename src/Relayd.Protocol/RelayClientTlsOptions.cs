using System.Security.Cryptography.X509Certificates;

namespace Relayd.Protocol;

/// <summary>The TLS side of <see cref="RelayClientOptions"/>: who this partner is and which relay it trusts.</summary>
public sealed record RelayClientTlsOptions
{
    /// <summary>No certificate, system trust store, server name from the host: set at least <see cref="ClientCertificate"/>.</summary>
    public static RelayClientTlsOptions Default { get; } = new();

    /// <summary>
    /// The partner's client certificate, with its private key, issued by the relay's partner CA (default: none; it
    /// must be set, <see cref="RelayClientOptions.Validate"/> refuses options without one).
    /// </summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>
    /// Roots that may issue the relay's server certificate. Null uses the system trust store (default: null).
    /// </summary>
    public X509Certificate2Collection? RelayRoots { get; init; }

    /// <summary>TLS server name to expect (default: <see cref="RelayClientOptions.Host"/>).</summary>
    public string? TargetHost { get; init; }
}
