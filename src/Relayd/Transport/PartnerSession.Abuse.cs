using Google.Protobuf;
using Relayd.Diagnostics;
using Relayd.Interop.Abuse;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Transport;

/// <summary>Abuse reports and notices (docs/protocol.md, "Abuse reports"): the logic is <see cref="AbuseReportStore"/>.</summary>
internal sealed partial class PartnerSession
{
    private void HandleAbuseReport(AbuseReport report)
    {
        AbuseReportStore abuse = _services.Abuse ?? throw NotYetCarried(nameof(AbuseReport));
        PartnerInfo reported;
        try
        {
            reported = AbuseReportCheck.Check(report, Partner, _services.Partners);
        }
        catch (RelayException ex)
        {
            InteropLog.AbuseReportRefused(_logger, Partner.Id, ex.Code, ex.Detail);
            WriteFrame(new Frame { Error = new Error { Code = ex.Code, Detail = ex.Detail, ReportId = report.ReportId } });
            return;
        }

        _ = AcknowledgeWhenDurableAsync(abuse.AcceptAsync(Partner, reported, report), report.ReportId);
    }

    /// <summary>The ack once the report is durable, through the outbox: the reader has moved on meanwhile.</summary>
    private async Task AcknowledgeWhenDurableAsync(Task<AbuseReportAck> accepted, ByteString reportId)
    {
        Frame answer;
        try
        {
            answer = new Frame { AbuseReportAck = await accepted };
        }
        catch (IOException ex)
        {
            answer = new Frame { Error = new Error { Code = ErrorCode.RetryLater, Detail = "the relay could not store the report: " + ex.Message, ReportId = reportId, RetryAfterMs = 1000 } };
        }

        TryEnqueueFrame(answer); // false: the session is closing; a resend on another gets the same ack
    }

    private void HandleAbuseNoticeAck(AbuseNoticeAck ack)
    {
        AbuseReportStore abuse = _services.Abuse ?? throw NotYetCarried(nameof(AbuseNoticeAck));
        abuse.Acknowledge(Partner, ack.NoticeIds);
    }

    /// <summary>
    /// After attach: abuse notices and READ receipts held while the partner had no session go to this one (called
    /// once the session is registered, so nothing routed live meanwhile is missed).
    /// </summary>
    private void HandOverInteropHeld()
    {
        _services.Abuse?.HandOver(Partner, TryEnqueueFrame);
        _services.ReadReceipts?.HandOver(Partner, TryEnqueueFrame);
    }
}
