using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private void HandleConsentUpdate(ConsentUpdate update) => throw NotYetCarried(nameof(ConsentUpdate));
}
