using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private void OnAbuseReportAck(AbuseReportAck ack)
    {
    }

    private ValueTask OnAbuseNoticeAsync(AbuseNotice notice, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private bool FailAbuseReport(Error error) => false;
}
