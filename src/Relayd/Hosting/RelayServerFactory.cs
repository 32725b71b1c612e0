using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Relayd.Security;
using Relayd.Transport;

namespace Relayd.Hosting;

/// <summary>Builds a <see cref="RelayServer"/> from options: loads the server certificate, partner CA and CRL.</summary>
internal static class RelayServerFactory
{
    public static RelayServer Create(RelayOptions options, ILogger logger, TimeProvider? clock = null)
    {
        X509Certificate2 serverCertificate = CertificateFactory.LoadPem(options.Tls.CertificatePath, options.Tls.KeyPath);
        X509Certificate2Collection partnerRoots = CertificateFactory.LoadPemBundle(options.Tls.PartnerCaPath);
        byte[]? crl = string.IsNullOrEmpty(options.Tls.CrlPath) ? null : File.ReadAllBytes(options.Tls.CrlPath);
        var validator = new PartnerCertificateValidator(partnerRoots, crl);
        return new RelayServer(options, serverCertificate, validator, logger, clock);
    }
}
