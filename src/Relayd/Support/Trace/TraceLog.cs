using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;

namespace Relayd.Support.Trace;

/// <summary>The trace's log lines (event ids 98x).</summary>
internal static partial class TraceLog
{
    [LoggerMessage(EventIds.TraceOpened, LogLevel.Information, "Trace in {Directory}: {Segments} segments, {Bytes} bytes; accepted and durable steps of {Derived} envelopes the write-ahead log holds, accepted since just before the trace's newest event, derived from the log (a query keeps them only where the originals were lost with the last process)")]
    public static partial void TraceOpened(ILogger logger, string directory, int segments, long bytes, int derived);

    [LoggerMessage(EventIds.TraceWriteFailed, LogLevel.Warning, "Trace writing in {Directory} failed: {Reason}; events are dropped (relayd_trace_events_dropped_total) until it works again, messages are not affected")]
    public static partial void TraceWriteFailed(ILogger logger, string directory, string reason);

    [LoggerMessage(EventIds.TraceUnavailable, LogLevel.Warning, "The trace cannot be opened in {Directory}: {Reason}; the relay runs without it (TraceRequest is refused with UNEXPECTED_FRAME, ctl trace answers not_available)")]
    public static partial void TraceUnavailable(ILogger logger, string directory, string reason);

    [LoggerMessage(EventIds.TraceQueryFailed, LogLevel.Warning, "A TraceRequest of partner '{PartnerId}' failed: {Reason}")]
    public static partial void TraceQueryFailed(ILogger logger, string partnerId, string reason);
}
