using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Google.Protobuf;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    /// <summary>Envelopes the relay delivers to this partner, in order per conversation. Acknowledge each when stored.</summary>
    public IAsyncEnumerable<Deliver> ReadDeliveriesAsync(CancellationToken cancellationToken = default) =>
        _deliveries.Reader.ReadAllAsync(cancellationToken);

    /// <summary>
    /// Hands each delivery to <paramref name="store"/> and acknowledges them in batches (up to 1024 per DeliveryAck,
    /// sent once <paramref name="store"/> returned for each, so returning means "stored on our side"). Ends after
    /// <paramref name="limit"/> deliveries or when the connection closes; returns how many it handled.
    /// </summary>
    public async Task<long> ConsumeAsync(Action<Deliver> store, long limit = long.MaxValue, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ChannelReader<Deliver> deliveries = _deliveries.Reader;
        var ids = new List<ulong>(MaxIdsPerDeliveryAck);
        long handled = 0;
        while (handled < limit && await deliveries.WaitToReadAsync(cancellationToken))
        {
            while (ids.Count < MaxIdsPerDeliveryAck && handled + ids.Count < limit && deliveries.TryRead(out Deliver? delivery))
            {
                store(delivery);
                ids.Add(delivery.DeliveryId);
            }

            handled += ids.Count;
            await AcknowledgeAsync(ids, cancellationToken);
            ids.Clear();
        }

        return handled;
    }

    private const int MaxIdsPerDeliveryAck = 1024;

    private InPlaceConsumer? _inPlace;
    private readonly List<ulong> _inPlaceAcks = new(MaxIdsPerDeliveryAck); // the read loop's own

    /// <summary>
    /// Hands each delivery to <paramref name="store"/> as a <see cref="DeliveryView"/> over the connection's input
    /// buffer: no copy of the ciphertext, no message objects. <paramref name="store"/> runs on the connection's read
    /// loop, so keep it short: copy what is kept and return (a slow store delays this connection's Acks and receipts
    /// too). Deliveries are acknowledged once <paramref name="store"/> returned for each, in one DeliveryAck per read
    /// (up to 1024 ids). Ends after <paramref name="limit"/> deliveries or when the connection closes, with how many
    /// it handled; from then on deliveries go to <see cref="Deliveries"/> again.
    /// </summary>
    /// <remarks>
    /// One at a time per connection. Deliveries already waiting in <see cref="Deliveries"/> stay there. When
    /// <paramref name="store"/> throws, the task ends with that exception and the delivery it threw on is not
    /// acknowledged (the relay sends it again after this connection closes).
    /// </remarks>
    /// <exception cref="InvalidOperationException">Another ConsumeInPlaceAsync is running on this connection.</exception>
    public Task<long> ConsumeInPlaceAsync(DeliveryHandler store, long limit = long.MaxValue, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var consumer = new InPlaceConsumer(store, limit);
        if (Interlocked.CompareExchange(ref _inPlace, consumer, null) is not null)
        {
            throw new InvalidOperationException("a ConsumeInPlaceAsync is already running on this connection");
        }

        // Closed already: Fail completes the channel before it looks for a consumer, so one of the two sees the other.
        if (_deliveries.Reader.Completion.IsCompleted)
        {
            EndInPlace(consumer, _failure ?? new RelayException(ErrorCode.Unspecified, "the connection is closed"));
        }

        if (cancellationToken.CanBeCanceled)
        {
            CancellationTokenRegistration registration = cancellationToken.Register(static state =>
            {
                var (client, c, token) = ((RelayClient, InPlaceConsumer, CancellationToken))state!;
                if (Interlocked.CompareExchange(ref client._inPlace, null, c) == c)
                {
                    c.Done.TrySetCanceled(token);
                }
            }, (this, consumer, cancellationToken));
            _ = consumer.Done.Task.ContinueWith(static (_, r) => ((CancellationTokenRegistration)r!).Dispose(), registration, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        return consumer.Done.Task;
    }

    // On the read loop: one Deliver frame to the in-place consumer. False when the frame, parsed, is not a Deliver
    // after all (a later field of the body's oneof wins): the general path handles it.
    private bool DeliverInPlace(InPlaceConsumer consumer, in ReadOnlySequence<byte> frame)
    {
        bool inPlace;
        ulong deliveryId;
        long acceptedAtMs;
        EnvelopeHeader envelope;
        try
        {
            inPlace = DeliverWire.TryRead(frame, out deliveryId, out acceptedAtMs, out envelope);
        }
        catch (RelayException)
        {
            inPlace = false; // a layout the strict reader does not take: the generated parser judges it below
            (deliveryId, acceptedAtMs, envelope) = (0, 0, default);
        }

        Deliver? parsed = null;
        if (!inPlace)
        {
            Frame whole;
            try
            {
                whole = Frame.Parser.ParseFrom(frame);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new RelayException(ErrorCode.MalformedFrame, "the relay sent an invalid frame: " + ex.Message);
            }

            if (whole.BodyCase != Frame.BodyOneofCase.Deliver)
            {
                return false;
            }

            parsed = whole.Deliver;
        }

        var view = parsed is null ? new DeliveryView(frame, deliveryId, acceptedAtMs, envelope) : new DeliveryView(parsed);
        try
        {
            consumer.Store(view);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            FlushInPlaceAcks();
            if (Interlocked.CompareExchange(ref _inPlace, null, consumer) == consumer)
            {
                consumer.Done.TrySetException(ex);
            }

            return true;
        }

        _inPlaceAcks.Add(view.DeliveryId);
        if (++consumer.Handled >= consumer.Limit)
        {
            FlushInPlaceAcks();
            if (Interlocked.CompareExchange(ref _inPlace, null, consumer) == consumer)
            {
                consumer.Done.TrySetResult(consumer.Handled);
            }
        }
        else if (_inPlaceAcks.Count == MaxIdsPerDeliveryAck)
        {
            FlushInPlaceAcks();
        }

        return true;
    }

    // On the read loop: acknowledges what the in-place consumer stored since the last call.
    private void FlushInPlaceAcks()
    {
        if (_inPlaceAcks.Count == 0)
        {
            return;
        }

        var ack = new DeliveryAck();
        ack.DeliveryIds.AddRange(_inPlaceAcks);
        _inPlaceAcks.Clear();
        lock (_writeLock)
        {
            FrameWriter.Write(_output.Writer, new Frame { DeliveryAck = ack });
            FlushUnderLock();
        }
    }

    private void EndInPlace(InPlaceConsumer consumer, Exception reason)
    {
        if (Interlocked.CompareExchange(ref _inPlace, null, consumer) == consumer)
        {
            if (reason is RelayException { Code: ErrorCode.Unspecified })
            {
                consumer.Done.TrySetResult(consumer.Handled);
            }
            else
            {
                consumer.Done.TrySetException(reason);
            }
        }
    }

    private sealed class InPlaceConsumer(DeliveryHandler store, long limit)
    {
        public DeliveryHandler Store { get; } = store;

        public long Limit { get; } = limit;

        public long Handled;

        public TaskCompletionSource<long> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The same deliveries as a channel, for consumers that acknowledge in batches (TryRead until empty, then ack).</summary>
    public ChannelReader<Deliver> Deliveries => _deliveries.Reader;

    /// <summary>The same receipts as a channel.</summary>
    public ChannelReader<Receipt> Receipts => _receipts.Reader;

    /// <summary>Receipts for envelopes this partner sent: delivered, expired, refused.</summary>
    public IAsyncEnumerable<Receipt> ReadReceiptsAsync(CancellationToken cancellationToken = default) =>
        _receipts.Reader.ReadAllAsync(cancellationToken);

    private async Task ReadLoopAsync()
    {
        await Task.Yield();
        CancellationToken closed = _closed.Token;
        Exception? failure = null;
        try
        {
            while (true)
            {
                ReadResult result = await _input.ReadAsync(closed);
                ReadOnlySequence<byte> buffer = result.Buffer;
                while (FrameReader.TryReadFrame(ref buffer, _options.MaxFrameBytes, out ReadOnlySequence<byte> frame))
                {
                    if (Volatile.Read(ref _inPlace) is { } consumer && DeliverWire.IsDeliver(frame) && DeliverInPlace(consumer, frame))
                    {
                        continue;
                    }

                    FlushInPlaceAcks(); // before anything that may wait

                    if (_currentIncoming is not null && MediaChunkWire.TryRead(frame, out UInt128 transferId, out ulong offset, out ReadOnlySequence<byte> data))
                    {
                        // Media chunks skip the message parser: the data goes from the input buffer into the blob's pipe.
                        await ReceiveChunkAsync(transferId, (long)offset, data, closed);
                        continue;
                    }

                    Frame parsed;
                    try
                    {
                        parsed = Frame.Parser.ParseFrom(frame);
                    }
                    catch (InvalidProtocolBufferException ex)
                    {
                        throw new RelayException(ErrorCode.MalformedFrame, "the relay sent an invalid frame: " + ex.Message);
                    }

                    if (!await DispatchAsync(parsed, closed))
                    {
                        _input.AdvanceTo(buffer.Start, buffer.End);
                        return;
                    }
                }

                FlushInPlaceAcks();
                _input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (closed.IsCancellationRequested)
        {
            // Closed by us.
        }
        catch (Exception ex) when (ex is IOException or RelayException or ObjectDisposedException)
        {
            failure = ex;
            throw;
        }
        finally
        {
            Fail(failure ?? new RelayException(ErrorCode.Unspecified, "the connection is closed"));
        }
    }

    /// <summary>Returns false when the relay ends the connection.</summary>
    private async ValueTask<bool> DispatchAsync(Frame frame, CancellationToken cancellationToken)
    {
        switch (frame.BodyCase)
        {
            case Frame.BodyOneofCase.Ack:
                CompleteAck(frame.Ack);
                return true;
            case Frame.BodyOneofCase.Deliver:
                await _deliveries.Writer.WriteAsync(frame.Deliver, cancellationToken);
                return true;
            case Frame.BodyOneofCase.Receipt:
                if (_options.ReceiveReceipts)
                {
                    await _receipts.Writer.WriteAsync(frame.Receipt, cancellationToken);
                }

                return true;
            case Frame.BodyOneofCase.Ping:
                lock (_writeLock)
                {
                    FrameWriter.Write(_output.Writer, new Frame { Pong = new Pong { Nonce = frame.Ping.Nonce } });
                    FlushUnderLock();
                }

                return true;
            case Frame.BodyOneofCase.MediaCredit or Frame.BodyOneofCase.MediaResumed or Frame.BodyOneofCase.MediaComplete
                or Frame.BodyOneofCase.MediaOpen or Frame.BodyOneofCase.MediaChunk or Frame.BodyOneofCase.MediaClose:
                await DispatchMediaAsync(frame, cancellationToken);
                return true;
            case Frame.BodyOneofCase.ConsentAck or Frame.BodyOneofCase.KeyBundleRequest or Frame.BodyOneofCase.KeyBundleResponse
                or Frame.BodyOneofCase.Capabilities or Frame.BodyOneofCase.Typing or Frame.BodyOneofCase.AbuseReportAck
                or Frame.BodyOneofCase.AbuseNotice:
                await DispatchInteropAsync(frame, cancellationToken);
                return true;
            case Frame.BodyOneofCase.HealthReply or Frame.BodyOneofCase.TraceReply or Frame.BodyOneofCase.EvidenceReply:
                await DispatchInteropAsync(frame, cancellationToken);
                return true;
            case Frame.BodyOneofCase.Error:
                if (FailSend(frame.Error) || FailMedia(frame.Error) || FailInterop(frame.Error))
                {
                    return true;
                }

                var error = RelayException.FromError(frame.Error);
                if (frame.Error.Fatal)
                {
                    throw error;
                }

                _options.OnRelayError?.Invoke(error);
                return true;
            case Frame.BodyOneofCase.GoAway:
                // The relay is leaving: new sends fail fast, answers to what was sent still arrive, then this side
                // says GoAway too and closes, which lets the relay finish without waiting for its deadline.
                Interlocked.CompareExchange(ref _failure, RelayException.FromError(new Error { Code = frame.GoAway.Code, Detail = "the relay sent GoAway: " + frame.GoAway.Detail, RetryAfterMs = 1000 }), null);
                _ = Task.Run(() => CloseAsync(), CancellationToken.None);
                return true;
            default:
                return true;
        }
    }

    private const int CoalesceBelowBytes = 16 * 1024;

    private async Task WriteLoopAsync()
    {
        await Task.Yield();
        PipeReader output = _output.Reader;
        try
        {
            while (true)
            {
                ReadResult result = await output.ReadAsync(_closed.Token);
                if (result.Buffer.Length < CoalesceBelowBytes && !result.IsCompleted)
                {
                    // Give concurrent senders one scheduling turn to add to this write: every write is a TLS record
                    // and a syscall, the largest cost per message.
                    output.AdvanceTo(result.Buffer.Start);
                    await Task.Yield();
                    result = await output.ReadAsync(_closed.Token);
                }

                foreach (ReadOnlyMemory<byte> segment in result.Buffer)
                {
                    await _stream.WriteAsync(segment, _closed.Token);
                }

                output.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
        {
            Fail(ex);
        }
        finally
        {
            await output.CompleteAsync();
        }
    }
}
