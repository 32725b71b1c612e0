using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;

namespace Relayd.Wal;

/// <summary>
/// Creates the next segment in the background, one ahead of the one being appended to, so that appends never wait
/// for 64 MiB of zeros to be written and synced. Its state is guarded by the log's append lock.
/// </summary>
internal sealed class WalSegmentPreparer : IDisposable
{
    private readonly WalOptions _options;
    private readonly ILogger _logger;
    private readonly Action _settled;
    private Task<WalSegment>? _task;
    private Exception? _lastError;
    private long _retryAt;

    /// <param name="settled">Called (on a pool thread) whenever a preparation finishes, successfully or not.</param>
    public WalSegmentPreparer(WalOptions options, ILogger logger, Action settled)
    {
        _options = options;
        _logger = logger;
        _settled = settled;
    }

    private const int RetryPauseMs = 1000; // after a failed pre-write (disk full): retry once a second, not in a loop

    public enum Outcome
    {
        Ready,
        Pending,
        Failed,
    }

    public bool IsPending => _task is { IsCompleted: false };

    /// <summary>The prepared segment not yet taken, if any.</summary>
    public WalSegment? Ready => _task is { IsCompletedSuccessfully: true } task ? task.Result : null;

    /// <summary>Uses a spare segment found on disk at open instead of creating one.</summary>
    public void Adopt(WalSegment spare) => _task = Task.FromResult(spare);

    public void Start(ulong number)
    {
        _task = Task.Factory.StartNew(() => Create(number), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        _ = _task.ContinueWith(static (_, state) => ((Action)state!)(), _settled, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    /// <summary>
    /// Takes segment <paramref name="number"/> if it is ready and starts preparing the one after it. After a failure
    /// the same error is handed out for a second; then the next call starts a new attempt (the disk may have room
    /// again by then). Without that pause every append would start, and log, another doomed attempt.
    /// </summary>
    public Outcome TryTake(ulong number, out WalSegment? segment, out Exception? error)
    {
        segment = null;
        error = null;
        if (_task is null)
        {
            if (_lastError is not null && Environment.TickCount64 < _retryAt)
            {
                error = _lastError;
                return Outcome.Failed;
            }

            Start(number);
            return Outcome.Pending;
        }

        if (!_task.IsCompleted)
        {
            return Outcome.Pending;
        }

        Task<WalSegment> task = _task;
        _task = null;
        if (!task.IsCompletedSuccessfully)
        {
            error = task.Exception?.InnerException ?? new OperationCanceledException();
            _lastError = error;
            _retryAt = Environment.TickCount64 + RetryPauseMs;
            return Outcome.Failed;
        }

        _lastError = null;

        segment = task.Result;
        if (segment.Number != number)
        {
            throw new InvalidOperationException($"prepared segment {segment.Number}, but segment {number} is next");
        }

        Start(number + 1);
        return Outcome.Ready;
    }

    /// <summary>Waits for a preparation in progress and closes a prepared segment that was never taken (its file stays: a zeroed spare).</summary>
    public void Dispose()
    {
        try
        {
            _task?.Wait();
        }
        catch (AggregateException)
        {
            // Already logged by Create; nothing was taken.
        }

        Ready?.Dispose();
        _task = null;
    }

    private WalSegment Create(ulong number)
    {
        try
        {
            return WalSegment.Create(_options.Directory, number, _options.SegmentBytes, _options.FileSync, _logger);
        }
        catch (Exception ex)
        {
            WalLog.SegmentCreationFailed(_logger, WalSegment.FileNameOf(number), ex);
            throw;
        }
    }
}
