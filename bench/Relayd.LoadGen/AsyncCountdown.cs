namespace Relayd.LoadGen;

/// <summary>
/// Counts messages in flight and completes a task when the count drops to zero, without blocking a thread. The
/// open loop used a <see cref="System.Threading.CountdownEvent"/> waited on by a pool thread: with one such blocked
/// thread per connection on a 2-core box, the ack continuations waited for the pool to inject threads (every ~0.5 s),
/// which showed as 0.5-2 s acks for the last messages of a run and a lower acked/s.
/// </summary>
internal sealed class AsyncCountdown
{
    private readonly TaskCompletionSource _zero = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _count = 1; // the sender's own count, released by Finish

    public void Add() => Interlocked.Increment(ref _count);

    public void Signal()
    {
        if (Interlocked.Decrement(ref _count) == 0)
        {
            _zero.TrySetResult();
        }
    }

    /// <summary>No more <see cref="Add"/> calls; completes once every added one has signalled.</summary>
    public Task FinishAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        Signal();
        return _zero.Task.WaitAsync(timeout, cancellationToken);
    }
}
