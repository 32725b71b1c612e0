using Microsoft.Extensions.Logging;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics;

/// <summary>
/// Log lines of abuse reports and read receipts (event ids 930-949). Never logs a report's note, its disclosed
/// content or user ids: counts, partners, reasons and notice ids only.
/// </summary>
internal static partial class InteropLog
{
    [LoggerMessage(EventIds.AbuseReportAccepted, LogLevel.Information, "Abuse report accepted as notice {NoticeId}: partner '{ReporterPartner}' reports a user of partner '{ReportedPartner}' for {Reason} ({Verified} message ids verified, {Unverified} not carried between them)")]
    public static partial void AbuseReportAccepted(ILogger logger, ulong noticeId, string reporterPartner, string reportedPartner, AbuseReason reason, int verified, int unverified);

    [LoggerMessage(EventIds.AbuseReportRefused, LogLevel.Warning, "Abuse report from partner '{ReporterPartner}' refused: {Code}: {Reason}")]
    public static partial void AbuseReportRefused(ILogger logger, string reporterPartner, ErrorCode code, string reason);

    [LoggerMessage(EventIds.AbuseNoticesHeld, LogLevel.Information, "{Count} abuse notices are held for partner '{PartnerId}' until one of its sessions acknowledges them")]
    public static partial void AbuseNoticesHeld(ILogger logger, int count, string partnerId);

    [LoggerMessage(EventIds.ReadReceiptDropped, LogLevel.Warning, "A READ receipt held for partner '{PartnerId}' was dropped: too many are held for it while it has no connection")]
    public static partial void ReadReceiptDropped(ILogger logger, string partnerId);

    [LoggerMessage(EventIds.InteropLogFailed, LogLevel.Error, "The interop log could not keep {What}: {Reason}")]
    public static partial void InteropLogFailed(ILogger logger, string what, string reason);

    [LoggerMessage(EventIds.InteropRecovered, LogLevel.Information, "Recovered {Records} records from the interop log in {Directory} (abuse reports, held read receipts)")]
    public static partial void InteropRecovered(ILogger logger, int records, string directory);
}
