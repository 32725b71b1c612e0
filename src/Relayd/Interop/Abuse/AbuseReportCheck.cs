using System.Text;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Interop.Abuse;

/// <summary>
/// The field rules of an AbuseReport (docs/protocol.md, "Abuse reports"): every refusal names its field, so the
/// reporting provider can fix it. Sizes are bounded so one report cannot fill the interop log.
/// </summary>
internal static class AbuseReportCheck
{
    public const int ReportIdBytes = 16;
    public const int MaxNoteBytes = 4 * 1024;
    public const int MaxDisclosedBytes = 64 * 1024;
    public const int MaxMessageIds = 100;
    public const int MaxUserBytes = 1024;

    /// <summary>The reported partner, once <paramref name="report"/> passes; throws the refusal otherwise.</summary>
    /// <exception cref="RelayException">SENDER_MISMATCH, PARTNER_NOT_APPROVED or INVALID_REQUEST naming the field.</exception>
    public static PartnerInfo Check(AbuseReport report, PartnerInfo reporter, PartnerDirectory partners)
    {
        if (report.ReportId.Length != ReportIdBytes)
        {
            throw Invalid($"report_id must be {ReportIdBytes} bytes, not {report.ReportId.Length}");
        }

        if (report.ReporterPartner != reporter.Id)
        {
            throw new RelayException(ErrorCode.SenderMismatch, $"reporter_partner '{report.ReporterPartner}' is not the authenticated partner '{reporter.Id}'");
        }

        CheckUser(report.ReporterUser.Length, "reporter_user");
        CheckUser(report.ReportedUser.Length, "reported_user");
        if (report.Reason == AbuseReason.Unspecified)
        {
            throw Invalid("reason must be set (spam, harassment, illegal content, impersonation or other)");
        }

        if (!Enum.IsDefined(report.Reason))
        {
            throw Invalid($"reason {(int)report.Reason} is not an AbuseReason this relay knows");
        }

        int noteBytes = Encoding.UTF8.GetByteCount(report.Note);
        if (noteBytes > MaxNoteBytes)
        {
            throw Invalid($"note is {noteBytes} bytes; at most {MaxNoteBytes}");
        }

        if (report.DisclosedContent.Length > MaxDisclosedBytes)
        {
            throw Invalid($"disclosed_content is {report.DisclosedContent.Length} bytes; at most {MaxDisclosedBytes}");
        }

        if (report.MessageIds.Count > MaxMessageIds)
        {
            throw Invalid($"message_ids has {report.MessageIds.Count} ids; at most {MaxMessageIds}");
        }

        for (int i = 0; i < report.MessageIds.Count; i++)
        {
            if (report.MessageIds[i].Length != ReportIdBytes)
            {
                throw Invalid($"message_ids[{i}] must be 16 bytes, not {report.MessageIds[i].Length}");
            }
        }

        PartnerInfo? reported = partners.Find(report.ReportedPartner);
        if (reported is null || string.IsNullOrEmpty(report.ReportedPartner))
        {
            throw new RelayException(ErrorCode.PartnerNotApproved, $"reported_partner '{report.ReportedPartner}' is not approved on this relay");
        }

        return reported;
    }

    private static void CheckUser(int length, string field)
    {
        if (length == 0)
        {
            throw Invalid($"{field} is empty");
        }

        if (length > MaxUserBytes)
        {
            throw Invalid($"{field} is {length} bytes; at most {MaxUserBytes}");
        }
    }

    private static RelayException Invalid(string detail) => new(ErrorCode.InvalidRequest, detail);
}
