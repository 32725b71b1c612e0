using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private void OnConsentAck(ConsentAck ack)
    {
    }

    private bool FailConsent(Error error) => false;
}
