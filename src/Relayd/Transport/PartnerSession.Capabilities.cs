using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private void HandleCapabilitiesRequest(CapabilitiesRequest request) => throw NotYetCarried(nameof(CapabilitiesRequest));
}
