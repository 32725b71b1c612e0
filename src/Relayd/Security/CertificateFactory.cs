using System.Net;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Relayd.Security;

/// <summary>
/// Creates and loads the certificates relayd works with: a partner CA, the relay's server certificate, partner
/// client certificates (SAN URI <c>relayd://partner/&lt;id&gt;</c>) and CRLs. ECDSA P-256 with SHA-256 throughout.
/// For dev and test PKIs; production partners get their certificates from the operator's own CA.
/// </summary>
public static class CertificateFactory
{
    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";

    /// <summary>A self-signed CA allowed to sign certificates and CRLs.</summary>
    public static X509Certificate2 CreateCa(string commonName, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName("CN=" + commonName), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request.CreateSelfSigned(notBefore, notAfter);
    }

    /// <summary>A TLS server certificate for the relay.</summary>
    public static X509Certificate2 IssueServer(X509Certificate2 ca, IEnumerable<string> dnsNames, IEnumerable<IPAddress> ipAddresses, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var san = new SubjectAlternativeNameBuilder();
        string? first = null;
        foreach (string name in dnsNames)
        {
            first ??= name;
            san.AddDnsName(name);
        }

        foreach (IPAddress address in ipAddresses)
        {
            san.AddIpAddress(address);
        }

        return Issue(ca, "CN=" + (first ?? "relayd"), ServerAuthOid, san.Build(), notBefore, notAfter);
    }

    /// <summary>A partner client certificate naming <paramref name="partnerId"/>, optionally with AIA and CRL URLs.</summary>
    public static X509Certificate2 IssuePartner(X509Certificate2 ca, string partnerId, DateTimeOffset notBefore, DateTimeOffset notAfter, Uri? aiaCaIssuersUrl = null, Uri? crlDistributionUrl = null)
    {
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(PartnerIdentity.UriPrefix + partnerId));
        var extra = new List<X509Extension>();
        if (aiaCaIssuersUrl is not null)
        {
            extra.Add(new X509AuthorityInformationAccessExtension(ocspUris: null, caIssuersUris: [aiaCaIssuersUrl.AbsoluteUri]));
        }

        if (crlDistributionUrl is not null)
        {
            extra.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([crlDistributionUrl.AbsoluteUri]));
        }

        return Issue(ca, "CN=" + partnerId, ClientAuthOid, san.Build(), notBefore, notAfter, extra);
    }

    /// <summary>A DER CRL signed by <paramref name="ca"/> revoking <paramref name="revoked"/>; valid for 7 days.</summary>
    public static byte[] CreateCrl(X509Certificate2 ca, IEnumerable<X509Certificate2> revoked, BigInteger crlNumber)
    {
        var builder = new CertificateRevocationListBuilder();
        foreach (X509Certificate2 certificate in revoked)
        {
            builder.AddEntry(certificate, DateTimeOffset.UtcNow.AddMinutes(-1), X509RevocationReason.KeyCompromise);
        }

        return builder.Build(ca, crlNumber, DateTimeOffset.UtcNow.AddDays(7), HashAlgorithmName.SHA256);
    }

    /// <summary>Writes the certificate as PEM and, when <paramref name="keyPath"/> is given, its PKCS#8 key (mode 0600).</summary>
    public static void WritePem(X509Certificate2 certificate, string certPath, string? keyPath)
    {
        File.WriteAllText(certPath, certificate.ExportCertificatePem() + "\n");
        if (keyPath is null)
        {
            return;
        }

        using ECDsa key = certificate.GetECDsaPrivateKey() ?? throw new InvalidOperationException("the certificate has no ECDSA private key");
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem() + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    /// <summary>Loads a certificate and its key from PEM files, in a form SslStream on Linux can use.</summary>
    public static X509Certificate2 LoadPem(string certPath, string keyPath)
    {
        using X509Certificate2 pem = X509Certificate2.CreateFromPemFile(certPath, keyPath);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>Every certificate in a PEM bundle.</summary>
    public static X509Certificate2Collection LoadPemBundle(string path)
    {
        var bundle = new X509Certificate2Collection();
        bundle.ImportFromPemFile(path);
        return bundle;
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, string usageOid, X509Extension san, DateTimeOffset notBefore, DateTimeOffset notAfter, IEnumerable<X509Extension>? extra = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(subject), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usageOid)], critical: false));
        request.CertificateExtensions.Add(san);
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        foreach (X509Extension extension in extra ?? [])
        {
            request.CertificateExtensions.Add(extension);
        }

        // A CA-issued certificate must not outlive its issuer.
        DateTimeOffset end = notAfter < ca.NotAfter ? notAfter : ca.NotAfter;
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // positive
        using X509Certificate2 issued = request.Create(ca, notBefore, end, serial);
        return issued.CopyWithPrivateKey(key);
    }
}
