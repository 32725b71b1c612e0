using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    // Not built yet (issue 14): refused as before the frame existed.
    private void HandleHealthRequest(HealthRequest request) =>
        throw new RelayException(ErrorCode.UnexpectedFrame, "this relay does not answer HealthRequest yet");
}
