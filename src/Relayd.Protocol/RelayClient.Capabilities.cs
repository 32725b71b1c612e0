using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>Capabilities (docs/protocol.md, "Capabilities"): what another partner takes, before sending it anything.</summary>
public sealed partial class RelayClient
{
    // Request ids of capability queries start high so that an Error's request_id is not mistaken for another kind of
    // request's (consent updates number theirs from 1).
    private const ulong FirstCapabilitiesRequestId = 1UL << 62;

    private readonly Dictionary<ulong, TaskCompletionSource<Capabilities>> _pendingCapabilities = [];
    private long _capabilitiesRequests;

    /// <summary>
    /// What <paramref name="partner"/> takes now: content kinds, largest media blob, whether its users are shown read
    /// receipts and typing (and, later, groups and disappearing messages).
    /// </summary>
    /// <exception cref="RelayException">UNKNOWN_RECIPIENT_PARTNER, or the connection ended.</exception>
    public async Task<Capabilities> GetCapabilitiesAsync(string partner, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(partner);
        if (_failure is { } failure)
        {
            throw failure;
        }

        ulong id = FirstCapabilitiesRequestId + (ulong)Interlocked.Increment(ref _capabilitiesRequests);
        var pending = new TaskCompletionSource<Capabilities>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pendingCapabilities)
        {
            _pendingCapabilities.Add(id, pending);
        }

        try
        {
            WriteInteropFrame(new Frame { CapabilitiesRequest = new CapabilitiesRequest { RequestId = id, Partner = partner } });
            return await AnswerOrEndAsync(pending.Task, cancellationToken);
        }
        finally
        {
            lock (_pendingCapabilities)
            {
                _pendingCapabilities.Remove(id);
            }
        }
    }

    private void OnCapabilities(Capabilities capabilities) => TakeCapabilities(capabilities.RequestId)?.TrySetResult(capabilities);

    private bool FailCapabilities(Error error)
    {
        TaskCompletionSource<Capabilities>? pending = error.RequestId >= FirstCapabilitiesRequestId ? TakeCapabilities(error.RequestId) : null;
        pending?.TrySetException(RelayException.FromError(error));
        return pending is not null;
    }

    private TaskCompletionSource<Capabilities>? TakeCapabilities(ulong requestId)
    {
        lock (_pendingCapabilities)
        {
            return _pendingCapabilities.GetValueOrDefault(requestId);
        }
    }
}
