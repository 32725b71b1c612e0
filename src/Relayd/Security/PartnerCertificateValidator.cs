using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using X509Crl = Org.BouncyCastle.X509.X509Crl;
using X509CertificateParser = Org.BouncyCastle.X509.X509CertificateParser;

namespace Relayd.Security;

/// <summary>
/// Decides whether a client certificate comes from the partner CA: chain built only against the configured roots,
/// no downloads (AIA, CRL, OCSP), client-auth usage required, and revocation from a local CRL file when configured.
/// </summary>
internal sealed class PartnerCertificateValidator
{
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private readonly X509Certificate2Collection _roots;
    private readonly X509Crl? _crl;

    /// <param name="roots">The partner CA certificates; at least one.</param>
    /// <param name="crl">A CRL signed by one of <paramref name="roots"/>, or null. <see cref="TlsMaterial"/> loads both and says what is wrong with the files.</param>
    public PartnerCertificateValidator(X509Certificate2Collection roots, X509Crl? crl)
    {
        if (roots.Count == 0)
        {
            throw new ArgumentException("the partner CA bundle holds no certificate", nameof(roots));
        }

        if (crl is not null && !IsSignedByOneOf(crl, roots))
        {
            throw new ArgumentException("the CRL is not signed by a configured partner CA", nameof(crl));
        }

        _roots = roots;
        _crl = crl;
    }

    /// <summary>The policy SslStream builds partner chains with: our roots only, nothing fetched.</summary>
    public X509ChainPolicy CreatePolicy()
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            DisableCertificateDownloads = true,
            RevocationMode = X509RevocationMode.NoCheck,
            VerificationFlags = X509VerificationFlags.NoFlag,
        };
        policy.CustomTrustStore.AddRange(_roots);
        policy.ApplicationPolicy.Add(new Oid(ClientAuthOid));
        return policy;
    }

    /// <summary>Returns null when the certificate is acceptable, else the reason it is not.</summary>
    public string? Validate(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return "no client certificate";
        }

        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0 || chain is null)
        {
            string status = chain is null ? "no chain" : string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());
            return $"certificate chain not trusted by the partner CA ({status})";
        }

        if (_crl is not null)
        {
            Org.BouncyCastle.X509.X509Certificate parsed = new X509CertificateParser().ReadCertificate(certificate.GetRawCertData());
            if (_crl.IsRevoked(parsed))
            {
                return $"certificate {certificate.GetSerialNumberString()} is revoked by the configured CRL";
            }
        }

        // Name mismatch is irrelevant for client certificates.
        return null;
    }

    /// <summary>Whether one of <paramref name="roots"/> signed <paramref name="crl"/>.</summary>
    public static bool IsSignedByOneOf(X509Crl crl, X509Certificate2Collection roots)
    {
        foreach (X509Certificate2 root in roots)
        {
            try
            {
                crl.Verify(new X509CertificateParser().ReadCertificate(root.RawData).GetPublicKey());
                return true;
            }
            catch (Exception ex) when (ex is Org.BouncyCastle.Security.InvalidKeyException or Org.BouncyCastle.Security.SignatureException or CryptographicException)
            {
                // Not this root; try the next.
            }
        }

        return false;
    }
}
