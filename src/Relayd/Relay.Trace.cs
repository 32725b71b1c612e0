namespace Relayd;

internal sealed partial class Relay
{
    /// <summary>Per-message trace (<c>relayd ctl trace</c>, TraceRequest); null when [trace] is off or before <see cref="Open"/>.</summary>
    internal Support.Trace.TraceRecorder? Trace { get; private set; }

    // The trace lives beside the log (<wal.dir>/trace) and is opened before the log's recovery, which tells it what
    // the log still holds.
    private void OpenTrace()
    {
        if (!_options.Trace.Enabled || Trace is not null)
        {
            return;
        }

        try
        {
            Trace = Support.Trace.TraceRecorder.Open(_options.Trace, _options.Storage.Directory, _clock, _logger);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Diagnostics never keep messages from flowing: the relay runs without the trace and says why.
            Support.Trace.TraceLog.TraceUnavailable(_logger, Path.Combine(_options.Storage.Directory, Support.Trace.TraceRecorder.DirectoryName), ex.Message);
            return;
        }

        Trace.ObserveMetrics(Metrics.Meter);
    }

    private void CloseTrace()
    {
        Trace?.Dispose();
    }
}
