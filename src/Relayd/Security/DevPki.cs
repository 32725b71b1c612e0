using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace Relayd.Security;

/// <summary>
/// A development PKI on disk, for <c>relayd pki init|issue-partner</c>, <c>relayd dev</c> and the demo:
/// <c>ca.crt</c>/<c>ca.key</c> (the partner CA, which also signs the dev server certificate),
/// <c>server.crt</c>/<c>server.key</c> (localhost, 127.0.0.1, ::1) and <c>partners/&lt;id&gt;.crt|.key</c>.
/// Never for production keys.
/// </summary>
public sealed partial class DevPki
{
    private const string PartnerIdRule = "^[a-z0-9][a-z0-9._-]{0,62}$";

    // Back-dated so a peer with a slightly slow clock already accepts freshly issued certificates.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>A dev PKI rooted at <paramref name="directory"/>; nothing is read or written until a method asks.</summary>
    /// <param name="directory">The PKI directory.</param>
    public DevPki(string directory) => Directory = directory;

    /// <summary>The PKI directory.</summary>
    public string Directory { get; }

    /// <summary><c>DIR/ca.crt</c>: the partner CA certificate, which also signs the dev server certificate.</summary>
    public string CaCertPath => Path.Combine(Directory, "ca.crt");

    /// <summary><c>DIR/ca.key</c>: the CA's private key.</summary>
    public string CaKeyPath => Path.Combine(Directory, "ca.key");

    /// <summary><c>DIR/server.crt</c>: the relay's server certificate.</summary>
    public string ServerCertPath => Path.Combine(Directory, "server.crt");

    /// <summary><c>DIR/server.key</c>: the server certificate's private key.</summary>
    public string ServerKeyPath => Path.Combine(Directory, "server.key");

    private string PartnersDirectory => Path.Combine(Directory, "partners");

    /// <summary><c>DIR/partners/&lt;id&gt;.crt</c>.</summary>
    /// <param name="id">A partner id; an invalid one throws <see cref="ArgumentException"/> (it becomes a file name).</param>
    public string PartnerCertPath(string id) => Path.Combine(PartnersDirectory, CheckedId(id, nameof(id)) + ".crt");

    /// <summary><c>DIR/partners/&lt;id&gt;.key</c>.</summary>
    /// <param name="id">A partner id; an invalid one throws <see cref="ArgumentException"/> (it becomes a file name).</param>
    public string PartnerKeyPath(string id) => Path.Combine(PartnersDirectory, CheckedId(id, nameof(id)) + ".key");

    /// <summary>
    /// Creates whichever of the CA and the server certificate is missing; never overwrites.
    /// Returns true when it created something, false when both were present.
    /// </summary>
    /// <exception cref="InvalidOperationException">The directory holds half a CA or server key pair, or a server certificate without its CA.</exception>
    public bool Init()
    {
        bool hasCa = HasPair(CaCertPath, CaKeyPath);
        bool hasServer = HasPair(ServerCertPath, ServerKeyPath);
        if (hasCa && hasServer)
        {
            return false;
        }

        if (!hasCa && hasServer)
        {
            // A new CA would leave the existing server certificate unverifiable, and we never overwrite.
            throw new InvalidOperationException($"{ServerCertPath} exists but the CA ({CaCertPath}, {CaKeyPath}) does not: remove the server files or restore the CA");
        }

        System.IO.Directory.CreateDirectory(PartnersDirectory);
        DateTimeOffset notBefore = DateTimeOffset.UtcNow - ClockSkew;
        using X509Certificate2 ca = hasCa ? LoadCa() : CertificateFactory.CreateCa("relayd dev partner CA", notBefore, notBefore.AddYears(10));
        if (!hasCa)
        {
            CertificateFactory.WritePem(ca, CaCertPath, CaKeyPath);
        }

        using X509Certificate2 server = CertificateFactory.IssueServer(ca, ["localhost"], [IPAddress.Loopback, IPAddress.IPv6Loopback], notBefore, notBefore.AddYears(2));
        CertificateFactory.WritePem(server, ServerCertPath, ServerKeyPath);
        return true;
    }

    /// <summary>Issues the certificate and key of <paramref name="partnerId"/>, replacing any existing ones.</summary>
    /// <param name="partnerId">The partner id; must match <c>^[a-z0-9][a-z0-9._-]{0,62}$</c>.</param>
    /// <exception cref="ArgumentException">The id breaks the rule.</exception>
    /// <exception cref="InvalidOperationException"><see cref="Init"/> has not been run on this directory.</exception>
    public void IssuePartner(string partnerId)
    {
        CheckedId(partnerId, nameof(partnerId));
        if (!HasPair(CaCertPath, CaKeyPath))
        {
            throw new InvalidOperationException($"no dev CA in {Directory}: run 'relayd pki init --dir {Directory}' first");
        }

        System.IO.Directory.CreateDirectory(PartnersDirectory);
        DateTimeOffset notBefore = DateTimeOffset.UtcNow - ClockSkew;
        using X509Certificate2 ca = LoadCa();
        using X509Certificate2 partner = CertificateFactory.IssuePartner(ca, partnerId, notBefore, notBefore.AddYears(2));
        CertificateFactory.WritePem(partner, PartnerCertPath(partnerId), PartnerKeyPath(partnerId));
    }

    /// <summary>Whether both the certificate and the key of <paramref name="id"/> exist (half a pair counts as missing).</summary>
    /// <param name="id">A partner id; an invalid one throws <see cref="ArgumentException"/>.</param>
    public bool HasPartner(string id) => File.Exists(PartnerCertPath(id)) && File.Exists(PartnerKeyPath(id));

    /// <summary>The CA certificate with its private key.</summary>
    public X509Certificate2 LoadCa() => CertificateFactory.LoadPem(CaCertPath, CaKeyPath);

    /// <summary>The server certificate with its private key, ready for SslStream.</summary>
    public X509Certificate2 LoadServer() => CertificateFactory.LoadPem(ServerCertPath, ServerKeyPath);

    /// <summary>The certificate of <paramref name="id"/> with its private key, ready for SslStream.</summary>
    /// <param name="id">A partner id; an invalid one throws <see cref="ArgumentException"/>.</param>
    public X509Certificate2 LoadPartner(string id) => CertificateFactory.LoadPem(PartnerCertPath(id), PartnerKeyPath(id));

    private static bool HasPair(string certPath, string keyPath)
    {
        bool cert = File.Exists(certPath);
        if (cert != File.Exists(keyPath))
        {
            throw new InvalidOperationException($"only one of {certPath} and {keyPath} exists: remove it or restore the other");
        }

        return cert;
    }

    /// <summary>Why <paramref name="id"/> cannot be a partner id, or null when it can.</summary>
    /// <param name="id">A candidate partner id.</param>
    public static string? PartnerIdProblem(string id) =>
        PartnerIdPattern().IsMatch(id) ? null : $"partner id '{id}' must match {PartnerIdRule} (lower-case letters, digits, '.', '_', '-'; up to 63 characters, starting with a letter or digit)";

    // The id names files under partners/, so the rule also keeps it from escaping that directory.
    private static string CheckedId(string id, string paramName) =>
        PartnerIdProblem(id) is { } problem ? throw new ArgumentException(problem, paramName) : id;

    // \z rather than the rule's $, which would also accept a trailing newline.
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}\\z")]
    private static partial Regex PartnerIdPattern();
}
