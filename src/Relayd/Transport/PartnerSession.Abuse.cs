using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private void HandleAbuseReport(AbuseReport report) => throw NotYetCarried(nameof(AbuseReport));

    private void HandleAbuseNoticeAck(AbuseNoticeAck ack) => throw NotYetCarried(nameof(AbuseNoticeAck));
}
