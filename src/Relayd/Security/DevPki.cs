using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace Relayd.Security;

/// <summary>
/// A development PKI on disk, for <c>relayd pki</c>, <c>relayd dev</c> and the demo:
/// <c>ca.crt</c>/<c>ca.key</c> (the partner CA, which also signs the dev server certificate),
/// <c>server.crt</c>/<c>server.key</c> (localhost, 127.0.0.1, ::1) and <c>partners/&lt;id&gt;.crt|.key</c>.
/// </summary>
public sealed partial class DevPki
{
    public DevPki(string directory) => Directory = directory;

    public string Directory { get; }

    public string CaCertPath => Path.Combine(Directory, "ca.crt");

    public string CaKeyPath => Path.Combine(Directory, "ca.key");

    public string ServerCertPath => Path.Combine(Directory, "server.crt");

    public string ServerKeyPath => Path.Combine(Directory, "server.key");

    public string PartnerCertPath(string id) => Path.Combine(Directory, "partners", id + ".crt");

    public string PartnerKeyPath(string id) => Path.Combine(Directory, "partners", id + ".key");

    /// <summary>Creates the CA and the server certificate unless present. Returns true when it created them.</summary>
    public bool Init()
    {
        if (File.Exists(CaCertPath) && File.Exists(ServerCertPath))
        {
            return false;
        }

        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "partners"));
        DateTimeOffset now = DateTimeOffset.UtcNow.AddMinutes(-5);
        using X509Certificate2 ca = CertificateFactory.CreateCa("relayd dev partner CA", now, now.AddYears(10));
        using X509Certificate2 server = CertificateFactory.IssueServer(ca, ["localhost"], [IPAddress.Loopback, IPAddress.IPv6Loopback], now, now.AddYears(2));
        CertificateFactory.WritePem(ca, CaCertPath, CaKeyPath);
        CertificateFactory.WritePem(server, ServerCertPath, ServerKeyPath);
        return true;
    }

    /// <summary>Issues (or re-issues) the certificate of <paramref name="partnerId"/>.</summary>
    public void IssuePartner(string partnerId)
    {
        if (!PartnerIdPattern().IsMatch(partnerId))
        {
            throw new ArgumentException($"partner id '{partnerId}' must match ^[a-z0-9][a-z0-9._-]{{0,62}}$", nameof(partnerId));
        }

        if (!File.Exists(CaCertPath) || !File.Exists(CaKeyPath))
        {
            throw new InvalidOperationException($"no dev CA in {Directory}: run 'relayd pki init --dir {Directory}' first");
        }

        System.IO.Directory.CreateDirectory(Path.Combine(Directory, "partners"));
        DateTimeOffset now = DateTimeOffset.UtcNow.AddMinutes(-5);
        using X509Certificate2 ca = LoadCa();
        using X509Certificate2 partner = CertificateFactory.IssuePartner(ca, partnerId, now, now.AddYears(2));
        CertificateFactory.WritePem(partner, PartnerCertPath(partnerId), PartnerKeyPath(partnerId));
    }

    public bool HasPartner(string id) => File.Exists(PartnerCertPath(id)) && File.Exists(PartnerKeyPath(id));

    public X509Certificate2 LoadCa() => X509Certificate2.CreateFromPemFile(CaCertPath, CaKeyPath);

    public X509Certificate2 LoadServer() => CertificateFactory.LoadPem(ServerCertPath, ServerKeyPath);

    public X509Certificate2 LoadPartner(string id) => CertificateFactory.LoadPem(PartnerCertPath(id), PartnerKeyPath(id));

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex PartnerIdPattern();
}
