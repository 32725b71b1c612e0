using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;
using Relayd.Protocol.V1;
using Relayd.Diagnostics;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private readonly Lock _receiptLock = new();
    private List<ReceiptItem> _pendingReceipts = [];
    private List<ReceiptItem> _sendingReceipts = [];
    private const int AckWriteBytes = 32 * 1024; // Acks per TLS write: two TLS records, at least 512 Acks, so one commit's Acks leave in a write or two
    private readonly List<SettledEnvelope> _expiredReceipts = [];
    private readonly List<TakenDelivery> _written = []; // the deliveries of the range being written, for the support events
    private int _commitWaitRegistered;

    private bool _receiptsReturned; // guarded by _receiptLock: the writer has ended; receipts go back to the dispatcher

    /// <summary>Queues receipts for this partner's messages; the writer sends them batched.</summary>
    public void EnqueueReceipts(ReadOnlySpan<SettledEnvelope> receipts)
    {
        lock (_receiptLock)
        {
            if (!_receiptsReturned)
            {
                foreach (ref readonly SettledEnvelope receipt in receipts)
                {
                    _pendingReceipts.Add(receipt.Receipt);
                }

                _writerSignal.Set();
                return;
            }
        }

        // The dispatcher picked this session just before it detached: another session, or held.
        _services.Receipts.ReturnUnsent(Partner, receipts);
    }

    /// <summary>
    /// Once the writer has ended: the receipts it did not write, queued or in a write that failed, go back to the
    /// dispatcher (to another session of the partner, or held until one connects) instead of going with the session.
    /// One in a failed write may have reached the partner; a receipt twice is better than none.
    /// </summary>
    private void ReturnUnsentReceipts()
    {
        SettledEnvelope[] unsent;
        lock (_receiptLock)
        {
            _receiptsReturned = true;
            if (_sendingReceipts.Count == 0 && _pendingReceipts.Count == 0)
            {
                return;
            }

            unsent = new SettledEnvelope[_sendingReceipts.Count + _pendingReceipts.Count];
            int i = 0;
            foreach (ReceiptItem receipt in _sendingReceipts)
            {
                unsent[i++] = new SettledEnvelope(Partner, receipt, default(StoreRef));
            }

            foreach (ReceiptItem receipt in _pendingReceipts)
            {
                unsent[i++] = new SettledEnvelope(Partner, receipt, default(StoreRef));
            }

            _sendingReceipts.Clear();
            _pendingReceipts.Clear();
        }

        RelayLog.ReceiptsReturned(_logger, ConnectionId, Partner.Id, unsent.Length);
        _services.Receipts.ReturnUnsent(Partner, unsent);
    }

    /// <summary>
    /// Sends replies, receipts and deliveries until the control pipe is completed and drained. Each source is written
    /// in large blocks (a TLS record and a syscall per write are the main cost per message).
    /// </summary>
    private async Task WriteLoopAsync()
    {
        await Task.Yield();
        byte[] scratch = ArrayPool<byte>.Shared.Rent(WireFrames.MaxReceiptFrameBytes);
        byte[] ackBuffer = ArrayPool<byte>.Shared.Rent(AckWriteBytes);
        CancellationToken abort = _abort.Token;
        try
        {
            bool controlCompleted = false;

            // The first control bytes are the Welcome (or the refusal): nothing else goes before them. The session is
            // registered for live frames just before its Welcome is published, so its outbox may fill first.
            bool greeted = false;
            while (!controlCompleted || (_acks.Count > 0 && _services.Store.Failure is null) || ConsentAnswersPending)
            {
                await _writerSignal.WaitAsync();
                bool progressed;
                do
                {
                    progressed = false;
                    if (_control.Reader.TryRead(out ReadResult control))
                    {
                        foreach (ReadOnlyMemory<byte> segment in control.Buffer)
                        {
                            await _stream.WriteAsync(segment, abort);
                        }

                        progressed = !control.Buffer.IsEmpty;
                        greeted |= progressed;
                        _control.Reader.AdvanceTo(control.Buffer.End);
                        controlCompleted = control.IsCompleted;
                    }

                    if (!greeted)
                    {
                        continue; // progressed is false: wait for the signal the Welcome's publication gives
                    }

                    progressed |= await WriteAcksAsync(ackBuffer, abort);
                    progressed |= await WriteReceiptsAsync(scratch, abort);
                    progressed |= await WriteDeliveriesAsync(abort);
                    progressed |= await WriteMediaAsync(abort);
                    progressed |= await WriteOutboxAsync(abort);
                    progressed |= await WritePingOrCloseAsync(abort);
                }
                while (progressed);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            RelayLog.WriteFailed(_logger, ConnectionId, ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
            ArrayPool<byte>.Shared.Return(ackBuffer);
            await _control.Reader.CompleteAsync();
            _abort.Cancel();
        }
    }

    private async ValueTask<bool> WriteDeliveriesAsync(CancellationToken abort)
    {
        bool wrote = false;
        long now = _services.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        Routing.SupportEvents support = _services.Support;
        List<TakenDelivery>? written = support.IsEmpty ? null : _written;
        foreach (ShardQueue shard in Partner.Mailbox.Shards)
        {
            while (shard.TryTakeRange(this, now, _services.Interop.Consent, Partner, _expiredReceipts, written, out DeliveryRange range))
            {
                if (written is not null)
                {
                    // As the Deliver frames go to the stream: before the recipient can acknowledge them (a write that
                    // fails leaves them for the next session, reported again there).
                    long writtenAt = _services.Clock.GetUtcNow().ToUnixTimeMilliseconds();
                    foreach (TakenDelivery delivery in written)
                    {
                        support.EnvelopeDelivered(delivery.Sender, delivery.MessageId, Partner, ConnectionId, delivery.DeliveryId, writtenAt);
                    }
                }

                try
                {
                    await _stream.WriteAsync(range.Memory, abort);
                }
                finally
                {
                    shard.CompleteWrite(range);
                }

                wrote = true;
            }
        }

        if (_expiredReceipts.Count > 0)
        {
            Routing.SupportEventReports.ReportUndelivered(support, _expiredReceipts, Partner, now);
            CountRevokedReceipts(_expiredReceipts);
            _services.Receipts.Settle(_expiredReceipts);
            _expiredReceipts.Clear();
        }

        return wrote;
    }

    /// <summary>
    /// Sends the Acks whose envelopes the log has made durable, many per write. When some still wait, asks the store
    /// for a call after the next commit (and checks again, in case that commit happened just before asking).
    /// </summary>
    private async ValueTask<bool> WriteAcksAsync(byte[] buffer, CancellationToken abort)
    {
        bool wrote = false;
        while (_acks.Count > 0)
        {
            int length = _acks.TakeDurable(_services.Store.Durable, buffer, _services.Metrics.AckLatency, _services.Support, Partner, ConnectionId, _services.Clock);
            if (length > 0)
            {
                _services.Metrics.AcksSent.Add(_acks.LastTaken);
                await _stream.WriteAsync(buffer.AsMemory(0, length), abort);
                wrote = true;
                continue;
            }

            if (Interlocked.Exchange(ref _commitWaitRegistered, 1) == 0)
            {
                _services.Store.NotifyWhenDurable(this);
            }

            if (!_acks.HasDurable(_services.Store.Durable))
            {
                break;
            }
        }

        return wrote;
    }

    void IDurabilityListener.OnDurable()
    {
        Volatile.Write(ref _commitWaitRegistered, 0);
        _writerSignal.Set();
    }

    private async ValueTask<bool> WriteReceiptsAsync(byte[] scratch, CancellationToken abort)
    {
        lock (_receiptLock)
        {
            if (_pendingReceipts.Count == 0)
            {
                return false;
            }

            (_pendingReceipts, _sendingReceipts) = (_sendingReceipts, _pendingReceipts);
        }

        long now = _services.Clock.GetUtcNow().ToUnixTimeMilliseconds();
        int start = 0;
        while (start < _sendingReceipts.Count)
        {
            // One frame per run of equal status and code, at most MaxIdsPerReceipt ids.
            ReceiptItem first = _sendingReceipts[start];
            int end = start + 1;
            while (end < _sendingReceipts.Count && end - start < WireFrames.MaxIdsPerReceipt
                && _sendingReceipts[end].Status == first.Status && _sendingReceipts[end].Code == first.Code)
            {
                end++;
            }

            int length = WireFrames.WriteReceipt(scratch, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_sendingReceipts)[start..end], now);
            await _stream.WriteAsync(scratch.AsMemory(0, length), abort);
            start = end;
        }

        _sendingReceipts.Clear();
        return true;
    }

    private async ValueTask<bool> WritePingOrCloseAsync(CancellationToken abort)
    {
        if (Volatile.Read(ref _closeRequested) == 1 && Interlocked.Exchange(ref _closeRequested, 2) == 1)
        {
            var code = (ErrorCode)Volatile.Read(ref _closeCode);
            bool goAway = _closeWithGoAway;
            Frame frame = goAway
                ? new Frame { GoAway = new GoAway { Code = code, Detail = _closeDetail } }
                : new Frame { Error = new Error { Code = code, Detail = _closeDetail, Fatal = true } };
            await _stream.WriteAsync(frame.ToDelimitedArray(), abort);
            if (!goAway)
            {
                // A fatal error ends the session now; after GoAway the partner closes when its work is done.
                await _abort.CancelAsync();
            }

            return true;
        }

        if (Interlocked.CompareExchange(ref _pingOutstanding, 2, 1) == 1)
        {
            var ping = new Frame { Ping = new Ping { Nonce = (ulong)Environment.TickCount64 } };
            await _stream.WriteAsync(ping.ToDelimitedArray(), abort);
            return true;
        }

        return false;
    }
}

/// <summary>Encoding of rare control frames (Ping, GoAway) outside the pipes.</summary>
internal static class FrameEncoding
{
    public static byte[] ToDelimitedArray(this Frame frame)
    {
        using var buffer = new MemoryStream();
        frame.WriteDelimitedTo(buffer);
        return buffer.ToArray();
    }
}
