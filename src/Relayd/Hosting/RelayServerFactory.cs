using Microsoft.Extensions.Logging;
using Relayd.Security;

namespace Relayd.Hosting;

/// <summary>Builds a <see cref="Relay"/> from options: loads the server certificate, partner CA and CRL.</summary>
internal static class RelayServerFactory
{
    /// <summary>A relay that listens on <see cref="RelayOptions.Listen"/>; nothing is opened until its <see cref="Relay.Open"/>.</summary>
    /// <exception cref="TlsMaterialException">A file named under [tls] cannot be used.</exception>
    public static Relay Create(RelayOptions options, ILogger logger, TimeProvider? clock = null)
    {
        TlsMaterial tls = TlsMaterial.Load(options.Tls);
        var validator = new PartnerCertificateValidator(tls.PartnerRoots, tls.Crl);
        return new Relay(options, ListenAddress.Parse(options.Listen), tls.ServerCertificate, validator, logger, clock);
    }
}
