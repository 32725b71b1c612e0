using Microsoft.Extensions.Logging;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics;

/// <summary>Opt-in (ConsentUpdate): the consent store and its refusals. Never logs user ids.</summary>
internal static partial class ConsentLog
{
    [LoggerMessage(EventIds.ConsentOpened, LogLevel.Information, "Consent store opened in {Directory}: {Users} users of {Partners} partners ({Snapshot} from the snapshot, {Records} log records replayed) in {ElapsedMs:F0} ms; opt-in required: {Required}")]
    public static partial void ConsentOpened(ILogger logger, string directory, long users, int partners, long snapshot, long records, double elapsedMs, bool required);

    [LoggerMessage(EventIds.ConsentUpdateRefused, LogLevel.Warning, "ConsentUpdate {RequestId} from partner '{PartnerId}' refused with {Code}: {Detail}")]
    public static partial void ConsentUpdateRefused(ILogger logger, ulong requestId, string partnerId, ErrorCode code, string detail);

    [LoggerMessage(EventIds.ConsentAnswerDropped, LogLevel.Warning, "The answer to ConsentUpdate {RequestId} of partner '{PartnerId}' was not sent: the connection was aborted first (the update is durable and in force; a resend is answered again)")]
    public static partial void ConsentAnswerDropped(ILogger logger, ulong requestId, string partnerId);

    [LoggerMessage(EventIds.ConsentSnapshotWritten, LogLevel.Information, "Consent snapshot written: {Users} users, log replay from {Position}; {ElapsedMs:F0} ms")]
    public static partial void ConsentSnapshotWritten(ILogger logger, long users, string position, double elapsedMs);

    [LoggerMessage(EventIds.ConsentSnapshotFailed, LogLevel.Error, "Consent snapshot could not be written (the log keeps every record, nothing is lost; retried when the log grows): {Reason}")]
    public static partial void ConsentSnapshotFailed(ILogger logger, string reason);

    [LoggerMessage(EventIds.ConsentLogFailed, LogLevel.Critical, "The consent log failed: ConsentUpdates are refused with RETRY_LATER until the relay restarts: {Reason}")]
    public static partial void ConsentLogFailed(ILogger logger, string reason);

    [LoggerMessage(EventIds.ConsentQueuedRefused, LogLevel.Information, "{Count} queued envelopes for partner '{PartnerId}' settled as REFUSED (NOT_OPTED_IN): a user revoked consent while they waited")]
    public static partial void ConsentQueuedRefused(ILogger logger, int count, string partnerId);
}
