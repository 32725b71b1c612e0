using Relayd.Protocol.V1;

namespace Relayd.Protocol.Internal;

/// <summary>
/// The requests of one kind awaiting their answer, by request id: ids drawn from a range of the kind's own (so an
/// Error's request_id finds the one request it answers), the answer or the Error completing the one waiting.
/// </summary>
internal sealed class PendingRequests<TReply>(ulong firstId)
{
    private readonly Dictionary<ulong, TaskCompletionSource<TReply>> _pending = [];
    private long _issued;

    /// <summary>A new request id and the task its answer completes; <see cref="End"/> it when done waiting.</summary>
    public (ulong Id, Task<TReply> Answer) Begin()
    {
        ulong id = firstId + (ulong)Interlocked.Increment(ref _issued);
        var answer = new TaskCompletionSource<TReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending)
        {
            _pending.Add(id, answer);
        }

        return (id, answer.Task);
    }

    public void End(ulong id)
    {
        lock (_pending)
        {
            _pending.Remove(id);
        }
    }

    public void Answer(ulong id, TReply reply) => Take(id)?.TrySetResult(reply);

    /// <summary>Fails the request <paramref name="error"/> answers; false when it answers none of these.</summary>
    public bool Fail(Error error)
    {
        TaskCompletionSource<TReply>? pending = Take(error.RequestId);
        pending?.TrySetException(RelayException.FromError(error));
        return pending is not null;
    }

    private TaskCompletionSource<TReply>? Take(ulong id)
    {
        lock (_pending)
        {
            return _pending.GetValueOrDefault(id);
        }
    }
}
