using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private void HandleCapabilitiesRequest(CapabilitiesRequest request)
    {
        if (_services.Capabilities.Answer(request) is { } capabilities)
        {
            WriteFrame(new Frame { Capabilities = capabilities });
            return;
        }

        WriteFrame(new Frame
        {
            Error = new Error { Code = ErrorCode.UnknownRecipientPartner, Detail = $"no approved partner '{request.Partner}'", RequestId = request.RequestId },
        });
    }
}
