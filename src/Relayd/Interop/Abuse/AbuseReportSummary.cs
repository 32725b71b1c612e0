using Relayd.Protocol.V1;

namespace Relayd.Interop.Abuse;

/// <summary>
/// One report as the admin's listing shows it (<c>relayd ctl abuse</c>): users as hashes (xxHash3 of the id, the
/// same hash for the same user), never the note or the disclosed content.
/// </summary>
internal sealed record AbuseReportSummary(
    ulong NoticeId,
    long AcceptedAtMs,
    string ReporterPartner,
    ulong ReporterUserHash,
    string ReportedPartner,
    ulong ReportedUserHash,
    AbuseReason Reason,
    int Verified,
    int Unverified)
{
    /// <summary>The reported partner acknowledged the AbuseNotice (it has the report).</summary>
    public bool DeliveredToReportedPartner { get; set; }
}
