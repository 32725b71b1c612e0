using System.Net;
using System.Security.Cryptography.X509Certificates;
using Relayd.Security;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// The one place tests get certificates from: a partner CA, the relay's server certificate, approved and unapproved
/// partners, and the bad cases (other CA, expired, with AIA/CRL URLs). Generated per test run; nothing is committed.
/// Files are written too, for tests that start the relay as a process or use openssl.
/// </summary>
public sealed class TestPki : IDisposable
{
    private readonly Dictionary<string, X509Certificate2> _partners = [];

    public TestPki()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("relayd-test-pki-").FullName;
        DateTimeOffset now = DateTimeOffset.UtcNow;
        Ca = CertificateFactory.CreateCa("relayd test partner CA", now.AddDays(-90), now.AddYears(1));
        OtherCa = CertificateFactory.CreateCa("some other CA", now.AddDays(-1), now.AddYears(1));
        Server = CertificateFactory.IssueServer(Ca, ["localhost"], [IPAddress.Loopback, IPAddress.IPv6Loopback], now.AddDays(-1), now.AddYears(1));
        CertificateFactory.WritePem(Ca, CaPath, keyPath: null);
        CertificateFactory.WritePem(Server, ServerCertPath, ServerKeyPath);
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    public X509Certificate2 OtherCa { get; }

    public X509Certificate2 Server { get; }

    public string CaPath => Path.Combine(Directory, "ca.crt");

    public string ServerCertPath => Path.Combine(Directory, "server.crt");

    public string ServerKeyPath => Path.Combine(Directory, "server.key");

    /// <summary>A valid certificate for <paramref name="partnerId"/> from the partner CA (cached per id).</summary>
    public X509Certificate2 Partner(string partnerId)
    {
        lock (_partners)
        {
            if (!_partners.TryGetValue(partnerId, out X509Certificate2? certificate))
            {
                DateTimeOffset now = DateTimeOffset.UtcNow;
                certificate = Usable(CertificateFactory.IssuePartner(Ca, partnerId, now.AddDays(-1), now.AddYears(1)));
                _partners[partnerId] = certificate;
            }

            return certificate;
        }
    }

    public X509Certificate2 ExpiredPartner(string partnerId)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return Usable(CertificateFactory.IssuePartner(Ca, partnerId, now.AddDays(-30), now.AddDays(-1)));
    }

    public X509Certificate2 PartnerFromOtherCa(string partnerId)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return Usable(CertificateFactory.IssuePartner(OtherCa, partnerId, now.AddDays(-1), now.AddYears(1)));
    }

    public X509Certificate2 PartnerWithUrls(string partnerId, Uri aia, Uri crl)
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        return Usable(CertificateFactory.IssuePartner(Ca, partnerId, now.AddDays(-1), now.AddYears(1), aia, crl));
    }

    /// <summary>Writes a partner's certificate and key as PEM files; returns their paths.</summary>
    public (string Cert, string Key) WritePartner(string partnerId)
    {
        string cert = Path.Combine(Directory, partnerId + ".crt");
        string key = Path.Combine(Directory, partnerId + ".key");
        CertificateFactory.WritePem(Partner(partnerId), cert, key);
        return (cert, key);
    }

    /// <summary>
    /// Writes a minimal relay config in this directory: <paramref name="tables"/> first (so a test's line numbers are
    /// those of its own text), then [tls] with these certificates and partner alpha (plus <paramref name="partnerExtra"/>).
    /// </summary>
    public string WriteMinimalConfig(string tables, string partnerExtra = "")
    {
        string path = Path.Combine(Directory, $"relayd-{Guid.NewGuid():N}.toml");
        File.WriteAllText(path, $"""
            {tables}

            [tls]
            certificate = "{ServerCertPath}"
            key = "{ServerKeyPath}"
            partner_ca = "{CaPath}"

            [[partners]]
            id = "alpha"
            {partnerExtra}
            """);
        return path;
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    // Ephemeral keys work for TLS client certificates on Linux only after a PKCS#12 round trip.
    private static X509Certificate2 Usable(X509Certificate2 certificate) =>
        X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pkcs12), null);
}
