using System.Buffers.Binary;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private readonly Dictionary<UInt128, TaskCompletionSource<Ack>> _pendingAcks = [];

    /// <summary>Envelopes sent and not yet answered.</summary>
    public int PendingAcks
    {
        get
        {
            lock (_pendingAcks)
            {
                return _pendingAcks.Count;
            }
        }
    }

    /// <summary>
    /// Sends an envelope and completes with the relay's Ack: from then on the relay has promised to deliver it.
    /// A resend with the same message id is answered with the original Ack (<see cref="Ack.Duplicate"/> set).
    /// </summary>
    /// <exception cref="RelayException">The relay refused the envelope; <see cref="RelayException.Code"/> says why.</exception>
    public Task<Ack> SendAsync(Envelope envelope, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (envelope.MessageId.Length != 16)
        {
            throw new RelayException(ErrorCode.InvalidEnvelope, "message_id must be 16 bytes");
        }

        if (_failure is { } failure)
        {
            return Task.FromException<Ack>(failure);
        }

        var frame = new Frame { Envelope = envelope };
        int size = frame.CalculateSize();
        if (Welcome.MaxFrameBytes != 0 && size > Welcome.MaxFrameBytes)
        {
            throw new RelayException(ErrorCode.FrameTooLarge, $"envelope frame of {size} bytes exceeds the relay's limit of {Welcome.MaxFrameBytes}");
        }

        UInt128 id = BinaryPrimitives.ReadUInt128BigEndian(envelope.MessageId.Span);
        TaskCompletionSource<Ack> pending;
        lock (_pendingAcks)
        {
            if (!_pendingAcks.TryGetValue(id, out pending!))
            {
                pending = new TaskCompletionSource<Ack>(TaskCreationOptions.RunContinuationsAsynchronously);
                _pendingAcks.Add(id, pending);
            }
        }

        lock (_writeLock)
        {
            FrameWriter.Write(_output.Writer, frame, size);
            FlushUnderLock();
        }

        return cancellationToken.CanBeCanceled ? pending.Task.WaitAsync(cancellationToken) : pending.Task;
    }

    /// <summary>Tells the relay these deliveries are stored on this partner's side; the senders get DELIVERED receipts.</summary>
    public ValueTask AcknowledgeAsync(IEnumerable<ulong> deliveryIds, CancellationToken cancellationToken = default)
    {
        var ack = new DeliveryAck();
        ack.DeliveryIds.AddRange(deliveryIds);
        if (ack.DeliveryIds.Count == 0)
        {
            return ValueTask.CompletedTask;
        }

        lock (_writeLock)
        {
            FrameWriter.Write(_output.Writer, new Frame { DeliveryAck = ack });
            FlushUnderLock();
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>Acknowledges one delivery.</summary>
    public ValueTask AcknowledgeAsync(Deliver delivery, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(delivery);
        return AcknowledgeAsync([delivery.DeliveryId], cancellationToken);
    }

    /// <summary>
    /// Makes what was written visible to the write loop, which sends everything pending in one go. The output pipe
    /// never pauses, so the flush completes synchronously; callers hold <c>_writeLock</c>.
    /// </summary>
    private void FlushUnderLock()
    {
        ValueTask<System.IO.Pipelines.FlushResult> flush = _output.Writer.FlushAsync(CancellationToken.None);
        if (!flush.IsCompleted)
        {
            throw new InvalidOperationException("the output pipe paused; it is configured never to");
        }

        flush.GetAwaiter().GetResult();
    }

    private async Task WaitForPendingAcksAsync(TimeSpan timeout)
    {
        Task[] pending;
        lock (_pendingAcks)
        {
            pending = [.. _pendingAcks.Values.Select(p => (Task)p.Task)];
        }

        try
        {
            await Task.WhenAll(pending).WaitAsync(timeout);
        }
        catch (Exception ex) when (ex is RelayException or TimeoutException or IOException)
        {
            // Refusals were reported to their senders; closing anyway.
        }
    }

    private void CompleteAck(Ack ack)
    {
        if (ack.MessageId.Length != 16)
        {
            return;
        }

        TaskCompletionSource<Ack>? pending;
        lock (_pendingAcks)
        {
            UInt128 id = BinaryPrimitives.ReadUInt128BigEndian(ack.MessageId.Span);
            _pendingAcks.Remove(id, out pending);
        }

        pending?.TrySetResult(ack);
    }

    private bool FailSend(Error error)
    {
        if (error.MessageId.Length != 16)
        {
            return false;
        }

        TaskCompletionSource<Ack>? pending;
        lock (_pendingAcks)
        {
            _pendingAcks.Remove(BinaryPrimitives.ReadUInt128BigEndian(error.MessageId.Span), out pending);
        }

        pending?.TrySetException(RelayException.FromError(error));
        return pending is not null;
    }

    private void Fail(Exception reason)
    {
        Interlocked.CompareExchange(ref _failure, reason, null);
        TaskCompletionSource<Ack>[] pending;
        lock (_pendingAcks)
        {
            pending = [.. _pendingAcks.Values];
            _pendingAcks.Clear();
        }

        foreach (TaskCompletionSource<Ack> p in pending)
        {
            p.TrySetException(_failure!);
        }

        FailAllMedia(_failure!);
        FailAllConsent(_failure!);
        _deliveries.Writer.TryComplete(_failure is RelayException { Code: ErrorCode.Unspecified } ? null : _failure);
        if (Volatile.Read(ref _inPlace) is { } consumer)
        {
            EndInPlace(consumer, _failure!); // after the channel is complete: ConsumeInPlaceAsync checks it after registering
        }

        _receipts.Writer.TryComplete(_failure is RelayException { Code: ErrorCode.Unspecified } ? null : _failure);
    }
}
