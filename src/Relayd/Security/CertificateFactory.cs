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
    /// <summary>The SAN URI prefix that names a partner: <c>relayd://partner/&lt;id&gt;</c>.</summary>
    public const string PartnerUriPrefix = PartnerIdentity.UriPrefix;

    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>A self-signed CA (with its private key) allowed to sign certificates and CRLs.</summary>
    /// <param name="commonName">The CA's subject CN.</param>
    /// <param name="notBefore">Start of validity.</param>
    /// <param name="notAfter">End of validity; certificates it issues are cut off here.</param>
    public static X509Certificate2 CreateCa(string commonName, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(CommonName(commonName), key, HashAlgorithmName.SHA256);
        // Path length 0: this CA signs end-entity certificates only, never intermediates.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        // Issued certificates and CRLs point back at this via their authority key identifier.
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request.CreateSelfSigned(notBefore, notAfter);
    }

    /// <summary>A TLS server certificate (with its private key) for the relay, signed by <paramref name="ca"/>.</summary>
    /// <param name="ca">The issuing CA; must carry its private key.</param>
    /// <param name="dnsNames">DNS names for the SAN; the first also becomes the CN.</param>
    /// <param name="ipAddresses">IP addresses for the SAN.</param>
    /// <param name="notBefore">Start of validity.</param>
    /// <param name="notAfter">End of validity (cut off at the CA's own).</param>
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

        return Issue(ca, CommonName(first ?? "relayd"), ServerAuthOid, san.Build(), notBefore, notAfter, []);
    }

    /// <summary>
    /// A partner client certificate (with its private key) naming <paramref name="partnerId"/> in its SAN URI
    /// <c>relayd://partner/&lt;id&gt;</c> and CN.
    /// </summary>
    /// <param name="ca">The issuing CA; must carry its private key.</param>
    /// <param name="partnerId">The partner id.</param>
    /// <param name="notBefore">Start of validity.</param>
    /// <param name="notAfter">End of validity (cut off at the CA's own).</param>
    /// <param name="aiaCaIssuersUrl">When given, an AIA extension with this CA-issuers URL.</param>
    /// <param name="crlDistributionUrl">When given, a CRL distribution point extension with this URL.</param>
    public static X509Certificate2 IssuePartner(X509Certificate2 ca, string partnerId, DateTimeOffset notBefore, DateTimeOffset notAfter, Uri? aiaCaIssuersUrl = null, Uri? crlDistributionUrl = null)
    {
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(PartnerUriPrefix + partnerId));
        var extra = new List<X509Extension>();
        if (aiaCaIssuersUrl is not null)
        {
            extra.Add(new X509AuthorityInformationAccessExtension(ocspUris: null, caIssuersUris: [aiaCaIssuersUrl.AbsoluteUri]));
        }

        if (crlDistributionUrl is not null)
        {
            extra.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([crlDistributionUrl.AbsoluteUri]));
        }

        return Issue(ca, CommonName(partnerId), ClientAuthOid, san.Build(), notBefore, notAfter, extra);
    }

    /// <summary>A DER CRL signed by <paramref name="ca"/> revoking <paramref name="revoked"/>; next update in 7 days.</summary>
    /// <param name="ca">The CA that issued the revoked certificates; must carry its private key.</param>
    /// <param name="revoked">The certificates to list, by serial number.</param>
    /// <param name="crlNumber">The CRL number; must grow with each CRL the CA publishes.</param>
    public static byte[] CreateCrl(X509Certificate2 ca, IEnumerable<X509Certificate2> revoked, BigInteger crlNumber)
    {
        var builder = new CertificateRevocationListBuilder();
        foreach (X509Certificate2 certificate in revoked)
        {
            builder.AddEntry(certificate);
        }

        return builder.Build(ca, crlNumber, DateTimeOffset.UtcNow.AddDays(7), HashAlgorithmName.SHA256);
    }

    /// <summary>
    /// Writes the certificate as PEM and, when <paramref name="keyPath"/> is given, its PKCS#8 private key as PEM
    /// (mode 0600 on Unix). Existing files are replaced.
    /// </summary>
    /// <param name="cert">The certificate; must carry an ECDSA private key when <paramref name="keyPath"/> is given.</param>
    /// <param name="certPath">Where the certificate PEM goes.</param>
    /// <param name="keyPath">Where the key PEM goes, or null to write no key.</param>
    public static void WritePem(X509Certificate2 cert, string certPath, string? keyPath)
    {
        File.WriteAllText(certPath, cert.ExportCertificatePem() + "\n");
        if (keyPath is null)
        {
            return;
        }

        using ECDsa key = cert.GetECDsaPrivateKey() ?? throw new InvalidOperationException("the certificate has no ECDSA private key");
        string pem = key.ExportPkcs8PrivateKeyPem() + "\n";
        if (OperatingSystem.IsWindows())
        {
            File.WriteAllText(keyPath, pem);
            return;
        }

        // Restrict the mode before any key byte is written: UnixCreateMode covers a new file,
        // SetUnixFileMode an existing one that FileMode.Create truncates.
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = OwnerOnly };
        using var stream = new FileStream(keyPath, options);
        File.SetUnixFileMode(stream.SafeFileHandle, OwnerOnly);
        using var writer = new StreamWriter(stream);
        writer.Write(pem);
    }

    /// <summary>Loads a certificate and its private key from PEM files, in a form SslStream on Linux can use.</summary>
    /// <param name="certPath">The certificate PEM file.</param>
    /// <param name="keyPath">The private key PEM file.</param>
    public static X509Certificate2 LoadPem(string certPath, string keyPath)
    {
        // A PEM-loaded key is ephemeral; SslStream on Linux needs a PKCS#12 round trip to use it for a server certificate.
        using X509Certificate2 cert = X509Certificate2.CreateFromPemFile(certPath, keyPath);
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, X500DistinguishedName subject, string usageOid, X509Extension san, DateTimeOffset notBefore, DateTimeOffset notAfter, IEnumerable<X509Extension> extra)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usageOid)], critical: false));
        request.CertificateExtensions.Add(san);
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        foreach (X509Extension extension in extra)
        {
            request.CertificateExtensions.Add(extension);
        }

        // CertificateRequest.Create refuses validity outside the issuer's, so clamp to it.
        DateTimeOffset start = notBefore > ca.NotBefore ? notBefore : ca.NotBefore;
        DateTimeOffset end = notAfter < ca.NotAfter ? notAfter : ca.NotAfter;

        // 16 random bytes; first byte non-zero with the high bit clear, so the DER INTEGER is positive and exactly 16 bytes.
        byte[] serial = RandomNumberGenerator.GetBytes(16);
        serial[0] = (byte)((serial[0] & 0x7F) | 0x01);

        using X509Certificate2 issued = request.Create(ca, start, end, serial);
        return issued.CopyWithPrivateKey(key);
    }

    // The builder escapes the name, unlike "CN=" + name.
    private static X500DistinguishedName CommonName(string commonName)
    {
        var builder = new X500DistinguishedNameBuilder();
        builder.AddCommonName(commonName);
        return builder.Build();
    }
}
