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

        Trace = Support.Trace.TraceRecorder.Open(_options.Trace, _options.Storage.Directory, _clock, _logger);
        Trace.ObserveMetrics(Metrics.Meter);
    }

    private void CloseTrace()
    {
        Trace?.Dispose();
    }
}
