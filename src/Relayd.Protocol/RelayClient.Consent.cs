using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private readonly Dictionary<ulong, TaskCompletionSource<ConsentAck>> _pendingConsent = [];
    private long _nextConsentRequest;

    /// <summary>
    /// Tells the relay which of this partner's users opted in to (GRANT) or out of (REVOKE) chats with other providers'
    /// users, for every partner (empty <see cref="ConsentChange.ScopePartner"/>) or one. Completes with the relay's
    /// ConsentAck once the changes are durable and in force. Resending the same changes is harmless.
    /// </summary>
    /// <exception cref="RelayException">The relay refused the update (INVALID_REQUEST, UNKNOWN_RECIPIENT_PARTNER,
    /// RETRY_LATER; <see cref="RelayException.Code"/> and the message say why), or the connection ended first.</exception>
    public Task<ConsentAck> UpdateConsentAsync(IEnumerable<ConsentChange> changes, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        if (_failure is { } failure)
        {
            return Task.FromException<ConsentAck>(failure);
        }

        var update = new ConsentUpdate { RequestId = (ulong)Interlocked.Increment(ref _nextConsentRequest) };
        update.Changes.AddRange(changes);
        var frame = new Frame { ConsentUpdate = update };
        int size = frame.CalculateSize();
        if (Welcome.MaxFrameBytes != 0 && size > Welcome.MaxFrameBytes)
        {
            throw new RelayException(ErrorCode.FrameTooLarge, $"ConsentUpdate frame of {size} bytes exceeds the relay's limit of {Welcome.MaxFrameBytes}; send fewer changes at a time");
        }

        var pending = new TaskCompletionSource<ConsentAck>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pendingConsent)
        {
            _pendingConsent.Add(update.RequestId, pending);
        }

        lock (_writeLock)
        {
            FrameWriter.Write(_output.Writer, frame, size);
            FlushUnderLock();
        }

        if (_failure is { } failed)
        {
            FailAllConsent(failed); // the connection ended while the request was being registered
        }

        return cancellationToken.CanBeCanceled ? pending.Task.WaitAsync(cancellationToken) : pending.Task;
    }

    /// <summary>Consent updates sent and not yet answered.</summary>
    public int PendingConsentUpdates
    {
        get
        {
            lock (_pendingConsent)
            {
                return _pendingConsent.Count;
            }
        }
    }

    private void OnConsentAck(ConsentAck ack)
    {
        TaskCompletionSource<ConsentAck>? pending;
        lock (_pendingConsent)
        {
            _pendingConsent.Remove(ack.RequestId, out pending);
        }

        pending?.TrySetResult(ack);
    }

    private bool FailConsent(Error error)
    {
        if (error.RequestId == 0)
        {
            return false;
        }

        TaskCompletionSource<ConsentAck>? pending;
        lock (_pendingConsent)
        {
            _pendingConsent.Remove(error.RequestId, out pending);
        }

        pending?.TrySetException(RelayException.FromError(error));
        return pending is not null;
    }

    private void FailAllConsent(Exception reason)
    {
        TaskCompletionSource<ConsentAck>[] pending;
        lock (_pendingConsent)
        {
            pending = [.. _pendingConsent.Values];
            _pendingConsent.Clear();
        }

        foreach (TaskCompletionSource<ConsentAck> p in pending)
        {
            p.TrySetException(reason);
        }
    }
}
