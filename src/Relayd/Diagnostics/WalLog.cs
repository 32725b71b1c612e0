using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>
/// Every log line the write-ahead log writes, with fixed event ids 500-599 (50x open and recovery, 51x segments,
/// 52x failures, 53x repair). Never logs payloads. Log positions come as text (<c>segment:offset</c>, what
/// <c>WalPosition.ToString</c> writes) so that Diagnostics needs nothing of the log it describes.
/// </summary>
internal static partial class WalLog
{
    [LoggerMessage(EventIds.Opened, LogLevel.Information, "WAL opened in {Directory}: {Segments} segments, {Records} records, appending at {Tail}")]
    public static partial void Opened(ILogger logger, string directory, int segments, long records, string tail);

    [LoggerMessage(EventIds.TornTailTruncated, LogLevel.Warning, "WAL torn tail in {Segment} at byte offset {Offset} ({Reason}): zeroed {Bytes} bytes of an unfinished write; no committed record is affected")]
    public static partial void TornTailTruncated(ILogger logger, string segment, long offset, string reason, long bytes);

    [LoggerMessage(EventIds.StaleTemporaryDeleted, LogLevel.Warning, "WAL removed {File}: an unfinished segment pre-write from before a restart")]
    public static partial void StaleTemporaryDeleted(ILogger logger, string file);

    [LoggerMessage(EventIds.SpareSegmentDeleted, LogLevel.Information, "WAL removed {File}: a spare pre-written segment beyond the one kept ready")]
    public static partial void SpareSegmentDeleted(ILogger logger, string file);

    [LoggerMessage(EventIds.SegmentCreated, LogLevel.Debug, "WAL segment {File} pre-written ({Bytes} bytes) in {ElapsedMs} ms")]
    public static partial void SegmentCreated(ILogger logger, string file, long bytes, double elapsedMs);

    [LoggerMessage(EventIds.SegmentCreationFailed, LogLevel.Error, "WAL segment {File} could not be created; appends that need it are refused until it can be")]
    public static partial void SegmentCreationFailed(ILogger logger, string file, Exception exception);

    [LoggerMessage(EventIds.SegmentsDeleted, LogLevel.Information, "WAL deleted {Count} consumed segments before segment {Segment} ({Bytes} bytes)")]
    public static partial void SegmentsDeleted(ILogger logger, int count, ulong segment, long bytes);

    [LoggerMessage(EventIds.WalFailed, LogLevel.Critical, "WAL failed: {Operation} returned an error; nothing after {DurablePosition} is durable and the log accepts no more appends. The process must exit and recover on restart", EventName = "WalFailed")]
    public static partial void LogFailed(ILogger logger, string operation, string durablePosition, Exception exception);

    [LoggerMessage(EventIds.HandlerFailed, LogLevel.Error, "WAL {Event} handler threw")]
    public static partial void HandlerFailed(ILogger logger, string @event, Exception exception);

    [LoggerMessage(EventIds.RepairNothingToDo, LogLevel.Information, "WAL repair in {Directory}: nothing to repair")]
    public static partial void RepairNothingToDo(ILogger logger, string directory);

    [LoggerMessage(EventIds.RepairTruncating, LogLevel.Warning, "WAL repair: truncating the log at {Segment} byte offset {Offset} ({Problem})")]
    public static partial void RepairTruncating(ILogger logger, string segment, long offset, string problem);

    [LoggerMessage(EventIds.RepairQuarantinedTail, LogLevel.Warning, "WAL repair: copied bytes {From}..{To} of {Segment} to {Destination}, then zeroed them in the segment")]
    public static partial void RepairQuarantinedTail(ILogger logger, long from, long to, string segment, string destination);

    [LoggerMessage(EventIds.RepairQuarantinedSegment, LogLevel.Warning, "WAL repair: moved {Segment} to {Destination}")]
    public static partial void RepairQuarantinedSegment(ILogger logger, string segment, string destination);

    [LoggerMessage(EventIds.RepairDone, LogLevel.Warning, "WAL repair done: {Files} files in {QuarantineDirectory} hold {Bytes} bytes that are no longer part of the log")]
    public static partial void RepairDone(ILogger logger, int files, string quarantineDirectory, long bytes);
}
