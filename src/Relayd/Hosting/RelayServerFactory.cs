using Microsoft.Extensions.Logging;
using Relayd.Security;
using Relayd.Transport;

namespace Relayd.Hosting;

/// <summary>Builds a <see cref="RelayServer"/> from options: loads the server certificate, partner CA and CRL.</summary>
internal static class RelayServerFactory
{
    /// <exception cref="TlsMaterialException">A file named under [tls] cannot be used.</exception>
    public static RelayServer Create(RelayOptions options, ILogger logger, TimeProvider? clock = null)
    {
        TlsMaterial tls = TlsMaterial.Load(options.Tls);
        var validator = new PartnerCertificateValidator(tls.PartnerRoots, tls.Crl);
        return new RelayServer(options, tls.ServerCertificate, validator, logger, clock);
    }
}
