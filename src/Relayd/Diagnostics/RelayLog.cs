using System.Net;
using Microsoft.Extensions.Logging;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics;

/// <summary>
/// The relay's log lines (1xx lifecycle, 2xx admission, 3xx sessions, 4xx routing; media in <c>RelayLog.Media.cs</c>),
/// each with a fixed id from <see cref="EventIds"/>. Never logs ciphertext or user ids.
/// </summary>
internal static partial class RelayLog
{
    [LoggerMessage(EventIds.Listening, LogLevel.Information, "relayd {RelayId} listening on {Endpoint} for {PartnerCount} approved partners, {ShardCount} shards per partner")]
    public static partial void Listening(ILogger logger, string relayId, EndPoint endpoint, int partnerCount, int shardCount);

    [LoggerMessage(EventIds.ShuttingDown, LogLevel.Information, "Shutting down: GoAway sent to {SessionCount} sessions")]
    public static partial void ShuttingDown(ILogger logger, int sessionCount);

    [LoggerMessage(EventIds.Stopped, LogLevel.Information, "Stopped; {SessionCount} sessions were still open at the deadline")]
    public static partial void Stopped(ILogger logger, int sessionCount);

    [LoggerMessage(EventIds.AcceptFailed, LogLevel.Error, "Accept loop failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventIds.ConfigWarning, LogLevel.Warning, "Configuration: {Problem}")]
    public static partial void ConfigWarning(ILogger logger, string problem);

    [LoggerMessage(EventIds.TlsRefused, LogLevel.Warning, "Connection {ConnectionId} from {Remote} refused during TLS: {Reason}")]
    public static partial void TlsRefused(ILogger logger, long connectionId, EndPoint? remote, string reason);

    [LoggerMessage(EventIds.HandshakeTimedOut, LogLevel.Warning, "Connection {ConnectionId} from {Remote} closed: no TLS handshake within {TimeoutMs} ms")]
    public static partial void HandshakeTimedOut(ILogger logger, long connectionId, EndPoint? remote, double timeoutMs);

    // The ErrorCode overloads log the proto's name (PARTNER_NOT_APPROVED), as the docs spell it, not the C# one.
    public static void PartnerRefused(ILogger logger, long connectionId, EndPoint? remote, ErrorCode code, string reason) =>
        PartnerRefused(logger, connectionId, remote, ProtoNames.Of(code), reason);

    [LoggerMessage(EventIds.PartnerRefused, LogLevel.Warning, "Connection {ConnectionId} from {Remote} refused with {Code}: {Reason}")]
    private static partial void PartnerRefused(ILogger logger, long connectionId, EndPoint? remote, string code, string reason);

    [LoggerMessage(EventIds.SessionOpened, LogLevel.Information, "Session {ConnectionId} opened for partner {PartnerId} from {Remote} ({Agent})")]
    public static partial void SessionOpened(ILogger logger, long connectionId, string partnerId, EndPoint? remote, string agent);

    [LoggerMessage(EventIds.SessionClosed, LogLevel.Information, "Session {ConnectionId} of partner {PartnerId} closed: {Reason}")]
    public static partial void SessionClosed(ILogger logger, long connectionId, string partnerId, string reason);

    public static void ProtocolViolation(ILogger logger, long connectionId, string partnerId, ErrorCode code, string detail) =>
        ProtocolViolation(logger, connectionId, partnerId, ProtoNames.Of(code), detail);

    [LoggerMessage(EventIds.ProtocolViolation, LogLevel.Warning, "Session {ConnectionId} of partner {PartnerId} sent a bad frame, closing with {Code}: {Detail}")]
    private static partial void ProtocolViolation(ILogger logger, long connectionId, string partnerId, string code, string detail);

    [LoggerMessage(EventIds.IdleClosed, LogLevel.Information, "Session {ConnectionId} of partner {PartnerId} idle, closing")]
    public static partial void IdleClosed(ILogger logger, long connectionId, string partnerId);

    [LoggerMessage(EventIds.WriteFailed, LogLevel.Debug, "Session {ConnectionId} write failed")]
    public static partial void WriteFailed(ILogger logger, long connectionId, Exception exception);

    public static void EnvelopeRefused(ILogger logger, string partnerId, ErrorCode code, string detail) =>
        EnvelopeRefused(logger, partnerId, ProtoNames.Of(code), detail);

    // Warning: what a partner's support asks about first. EnvelopeRefusalLog keeps it to one line per partner and code
    // per interval, with a summary of the repeats.
    [LoggerMessage(EventIds.EnvelopeRefused, LogLevel.Warning, "Envelope from partner {PartnerId} refused with {Code}: {Detail}")]
    private static partial void EnvelopeRefused(ILogger logger, string partnerId, string code, string detail);

    public static void EnvelopeRefusalsSummarized(ILogger logger, long count, string partnerId, ErrorCode code, long seconds) =>
        EnvelopeRefusalsSummarized(logger, count, partnerId, ProtoNames.Of(code), seconds);

    [LoggerMessage(EventIds.EnvelopeRefusalsSummarized, LogLevel.Warning, "Refused {Count} more envelopes from partner {PartnerId} with {Code} in the last {Seconds} s")]
    private static partial void EnvelopeRefusalsSummarized(ILogger logger, long count, string partnerId, string code, long seconds);

    [LoggerMessage(EventIds.ReceiptsDropped, LogLevel.Warning, "{Count} receipts for partner {PartnerId} dropped: it has been away for longer than held_receipts_per_partner covers")]
    public static partial void ReceiptsDropped(ILogger logger, int count, string partnerId);

    [LoggerMessage(EventIds.ReceiptsReturned, LogLevel.Information, "Session {ConnectionId} of partner {PartnerId} closed with {Count} receipts not written; they go to its other sessions, or are held until it reconnects")]
    public static partial void ReceiptsReturned(ILogger logger, long connectionId, string partnerId, int count);

    [LoggerMessage(EventIds.RefusalsSummarized, LogLevel.Warning, "Refused {Count} more {What} from {Address} in the last {Seconds} s: {Reason}")]
    public static partial void RefusalsSummarized(ILogger logger, long count, string what, IPAddress address, long seconds, string reason);

    [LoggerMessage(EventIds.UntrackedRefusalsSummarized, LogLevel.Warning, "Refused {Count} more connections in the last {Seconds} s from addresses or for reasons not tracked one by one (more than {MaxKeys} at once)")]
    public static partial void UntrackedRefusalsSummarized(ILogger logger, long count, long seconds, int maxKeys);

    [LoggerMessage(EventIds.WriteStalled, LogLevel.Warning, "Session {ConnectionId} of partner {PartnerId}: a write made no progress for {TimeoutMs} ms, closing; its conversations move to the partner's other connections")]
    public static partial void WriteStalled(ILogger logger, long connectionId, string partnerId, double timeoutMs);

    public static void PartialFrameRefused(ILogger logger, long connectionId, string partnerId, Relayd.Protocol.V1.ErrorCode code, string detail) =>
        PartialFrameRefused(logger, connectionId, partnerId, Relayd.Protocol.ProtoNames.Of(code), detail);

    [LoggerMessage(EventIds.PartialFrameRefused, LogLevel.Warning, "Session {ConnectionId} of partner {PartnerId} closed with {Code}: {Detail}")]
    private static partial void PartialFrameRefused(ILogger logger, long connectionId, string partnerId, string code, string detail);
}
