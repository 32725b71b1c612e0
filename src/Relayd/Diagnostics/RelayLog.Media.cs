using Microsoft.Extensions.Logging;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics;

/// <summary>Media log lines: event ids 600-699. Sizes and partner ids only, never user ids or blob bytes.</summary>
internal static partial class RelayLog
{
    [LoggerMessage(EventIds.MediaOpened, LogLevel.Information, "Session {ConnectionId}: media transfer {SenderId} -> {RecipientId} opened, {TotalBytes} bytes declared")]
    public static partial void MediaOpened(ILogger logger, long connectionId, string senderId, string recipientId, long totalBytes);

    [LoggerMessage(EventIds.MediaSpooled, LogLevel.Information, "Session {ConnectionId}: media transfer {SenderId} -> {RecipientId} verified and spooled, {TotalBytes} bytes")]
    public static partial void MediaSpooled(ILogger logger, long connectionId, string senderId, string recipientId, long totalBytes);

    [LoggerMessage(EventIds.MediaDelivered, LogLevel.Information, "Session {ConnectionId}: media transfer {SenderId} -> {RecipientId} delivered, {TotalBytes} bytes; spool copy deleted")]
    public static partial void MediaDelivered(ILogger logger, long connectionId, string senderId, string recipientId, long totalBytes);

    [LoggerMessage(EventIds.MediaResumed, LogLevel.Information, "Session {ConnectionId}: media transfer of partner {SenderId} resumed at {NextOffset} of {TotalBytes} bytes")]
    public static partial void MediaResumed(ILogger logger, long connectionId, string senderId, long nextOffset, long totalBytes);

    public static void MediaRefused(ILogger logger, long connectionId, string partnerId, ErrorCode code, string detail) =>
        MediaRefused(logger, connectionId, partnerId, ProtoNames.Of(code), detail);

    [LoggerMessage(EventIds.MediaRefused, LogLevel.Warning, "Session {ConnectionId}: media from partner {PartnerId} refused with {Code}: {Detail}")]
    private static partial void MediaRefused(ILogger logger, long connectionId, string partnerId, string code, string detail);

    [LoggerMessage(EventIds.MediaDigestMismatch, LogLevel.Warning, "Session {ConnectionId}: media transfer {SenderId} -> {RecipientId} of {TotalBytes} bytes failed its SHA-256 check; discarded")]
    public static partial void MediaDigestMismatch(ILogger logger, long connectionId, string senderId, string recipientId, long totalBytes);

    [LoggerMessage(EventIds.MediaIdleTimeout, LogLevel.Warning, "Media transfer of partner {SenderId} stalled at {Received} of {TotalBytes} bytes; dropped")]
    public static partial void MediaIdleTimeout(ILogger logger, string senderId, long received, long totalBytes);

    [LoggerMessage(EventIds.MediaExpired, LogLevel.Information, "Spooled media {SenderId} -> {RecipientId} of {TotalBytes} bytes expired undelivered; deleted")]
    public static partial void MediaExpired(ILogger logger, string senderId, string recipientId, long totalBytes);

    [LoggerMessage(EventIds.MediaSpoolFailed, LogLevel.Error, "Media spool I/O failed at {Path}")]
    public static partial void MediaSpoolFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventIds.MediaSpoolDiscarded, LogLevel.Warning, "Media spool entry {Path} discarded: {Reason}")]
    public static partial void MediaSpoolDiscarded(ILogger logger, string path, string reason);

    [LoggerMessage(EventIds.MediaRecovered, LogLevel.Information, "Media spool {Directory}: {Blobs} blobs to deliver and {Partials} partial transfers to resume")]
    public static partial void MediaRecovered(ILogger logger, string directory, int blobs, int partials);

    [LoggerMessage(EventIds.MediaRecipientStalled, LogLevel.Warning, "Partner {RecipientId} stopped reading a media transfer at {Forwarded} of {Received} bytes received; the sender continues into the spool")]
    public static partial void MediaRecipientStalled(ILogger logger, string recipientId, long forwarded, long received);
}
