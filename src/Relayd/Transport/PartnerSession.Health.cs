using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    /// <summary>
    /// HealthRequest: the asking partner's own health (docs/protocol.md, "Health"). The request names no partner, so
    /// nothing about another partner can be asked for: the reply is built for the session's certified partner only.
    /// </summary>
    private void HandleHealthRequest(HealthRequest request)
    {
        if (_services.Health is not { } health)
        {
            // Not fatal: the session goes on; the request's id says which request was refused.
            WriteFrame(new Frame { Error = new Error { Code = ErrorCode.UnexpectedFrame, Detail = "partner health is off on this relay", RequestId = request.RequestId } });
            return;
        }

        WriteFrame(new Frame { HealthReply = health.Report(Partner).ToReply(request.RequestId) });
    }
}
