using Relayd.Diagnostics;

namespace Relayd.Wal;

public sealed partial class WriteAheadLog
{
    private readonly Lock _commitLock = new();
    private readonly PriorityQueue<TaskCompletionSource, WalPosition> _waiters = new();
    private ulong _durable;
    private Exception? _failure;
    private bool _failing; // guarded by _commitLock: Fail runs once

    /// <summary>
    /// Raised on the log-writer thread after each successful commit with the new <see cref="DurablePosition"/>.
    /// Handlers must be quick (the next group commit waits for them) and must not throw (exceptions are logged).
    /// </summary>
    public event Action<WalPosition>? Committed;

    /// <summary>
    /// Raised once when the log fails (a pwrite or fdatasync returned an error). The host should log it as critical and
    /// exit non-zero; on restart, recovery keeps exactly what reached the disk.
    /// </summary>
    public event Action<Exception>? Failed;

    /// <summary>
    /// Every record that ends at or before this position is on disk (written and fdatasync'ed). Only grows; never
    /// moves past a batch whose write or sync failed.
    /// </summary>
    public WalPosition DurablePosition => WalPosition.FromUInt64(Volatile.Read(ref _durable));

    /// <summary>The error that failed the log, or null while it works. Once set, it never clears.</summary>
    public Exception? Failure => Volatile.Read(ref _failure);

    /// <summary>How many fdatasync calls commits have made (fewer than records when group commit batches them).</summary>
    public long SyncCount => _writer.SyncCount;

    /// <summary>How long the commit in progress has run (zero when none is); see <see cref="WalLogWriter.CommitInProgressFor"/>.</summary>
    public TimeSpan CommitInProgressFor => _writer.CommitInProgressFor;

    /// <summary>False once the log-writer thread died.</summary>
    public bool IsWriterRunning => _writer.IsRunning;

    /// <summary>A copy of how long each fdatasync took, in microseconds (for metrics; read it with the HdrHistogram API).</summary>
    public HdrHistogram.HistogramBase SyncLatency => _writer.SyncLatencySnapshot();

    /// <summary>
    /// Completes when the record ending at <paramref name="end"/> (see <see cref="EndOf"/>) is durable. Faults with
    /// <see cref="WalFailedException"/> if the log fails first. For simple callers; may allocate.
    /// </summary>
    public ValueTask WaitForCommitAsync(WalPosition end, CancellationToken cancellationToken = default)
    {
        if (DurablePosition >= end)
        {
            return ValueTask.CompletedTask;
        }

        TaskCompletionSource waiter;
        lock (_commitLock)
        {
            if (_failure is not null)
            {
                return ValueTask.FromException(FailedException());
            }

            if (DurablePosition >= end)
            {
                return ValueTask.CompletedTask;
            }

            if (Volatile.Read(ref _disposed))
            {
                return ValueTask.FromException(new ObjectDisposedException(nameof(WriteAheadLog)));
            }

            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue(waiter, end);
        }

        return new ValueTask(cancellationToken.CanBeCanceled ? waiter.Task.WaitAsync(cancellationToken) : waiter.Task);
    }

    /// <summary>The log writer made everything before <paramref name="end"/> durable.</summary>
    internal void OnCommitted(WalPosition end)
    {
        Volatile.Write(ref _durable, end.ToUInt64());
        try
        {
            Committed?.Invoke(end);
        }
        catch (Exception ex)
        {
            WalLog.HandlerFailed(_logger, nameof(Committed), ex);
        }

        lock (_commitLock)
        {
            while (_waiters.TryPeek(out TaskCompletionSource? waiter, out WalPosition waitingFor) && waitingFor <= end)
            {
                _waiters.Dequeue();
                waiter.TrySetResult();
            }
        }
    }

    /// <summary>
    /// Fails the log for good: no retry of the sync, no more appends, every waiter faulted, <see cref="Failed"/> raised
    /// once. <see cref="DurablePosition"/> stays where the last successful commit left it.
    /// </summary>
    internal void Fail(string operation, Exception error)
    {
        lock (_commitLock)
        {
            if (_failing)
            {
                return;
            }

            _failing = true;
        }

        WalLog.LogFailed(_logger, operation, DurablePosition.ToString(), error);

        // The host hears first (it logs critical and stops the process); only then does anyone else see the failure,
        // so no caller can observe a failed log before Failed was raised. Nothing appended meanwhile becomes durable:
        // the writer has stopped, and its waiters are failed below.
        try
        {
            Failed?.Invoke(error);
        }
        catch (Exception ex)
        {
            WalLog.HandlerFailed(_logger, nameof(Failed), ex);
        }

        lock (_commitLock)
        {
            Volatile.Write(ref _failure, error);
        }

        FailWaiters(FailedException());
        lock (_appendLock)
        {
            SignalSpace(always: true);
        }
    }

    private void FailWaiters(Exception error)
    {
        lock (_commitLock)
        {
            while (_waiters.TryDequeue(out TaskCompletionSource? waiter, out _))
            {
                waiter.TrySetException(error);
            }
        }
    }

    private WalFailedException FailedException() =>
        new($"the write-ahead log in {Directory} has failed; records after {DurablePosition} are not durable: {_failure?.Message}", _failure);
}
