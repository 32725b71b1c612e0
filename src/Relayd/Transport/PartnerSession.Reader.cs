using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;
using Relayd.Diagnostics;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private readonly List<SettledEnvelope> _ackReceipts = [];
    private readonly PendingAcks _acks = new();
    private bool _logBusy;
    private bool _busyRetry; // the next envelope handled is the one the busy log turned back

    /// <summary>
    /// Smallest Hello.max_frame_bytes the relay accepts: every frame it sends besides Deliver and MediaOpen (which it
    /// checks per envelope and transfer) fits, with room to spare: media chunks of 64 KiB, receipts of 1024 ids.
    /// </summary>
    public const int MinDeclaredFrameBytes = 128 * 1024;

    private ReceiveDeclaration _declared = ReceiveDeclaration.Any;

    ReceiveDeclaration IDeliveryConsumer.Declared => _declared;

    /// <summary>
    /// Reads the first frame, which must be a Hello, and answers it with Welcome. Frames the partner sent right behind
    /// the Hello (pipelined, maybe in the same TLS record) stay in the input for the read loop. Returns null once
    /// welcomed, else why the session ends (the partner has been told).
    /// </summary>
    private async Task<string?> ReceiveHelloAsync(CancellationToken deadline)
    {
        int maxFrame = _services.Limits.MaxFrameBytes;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await _input.ReadAsync(deadline);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !_services.IsShuttingDown && !_abort.IsCancellationRequested)
            {
                double timeoutMs = _services.Limits.HandshakeTimeout.TotalMilliseconds;
                if (_services.Refusals.ShouldLog(RefusalKind.HandshakeTimeout, Remote, "no Hello in time", Environment.TickCount64))
                {
                    RelayLog.HelloTimedOut(_logger, ConnectionId, Partner.Id, Remote, timeoutMs);
                }

                WriteError(ErrorCode.HandshakeTimeout, $"no Hello within {timeoutMs} ms of connecting", fatal: true);
                await FlushControlAsync();
                return "no Hello in time";
            }

            ReadOnlySequence<byte> buffer = result.Buffer;
            Frame? hello = null;
            try
            {
                if (FrameReader.TryReadFrame(ref buffer, maxFrame, out ReadOnlySequence<byte> frame))
                {
                    hello = ParseFrame(frame);
                }
            }
            catch (RelayException ex)
            {
                Refuse(ex.Code, ex.Detail);
                await FlushControlAsync();
                return "bad first frame";
            }

            if (hello is not null)
            {
                // Consumed the Hello only, and examined no further: what follows it is read at once by the read loop.
                _input.AdvanceTo(buffer.Start);
                bool welcomed = AnswerHello(hello);
                if (welcomed)
                {
                    // Registered before the Welcome is published: a partner may route to this session (key bundles,
                    // typing) from the moment it has the Welcome, and a frame routed now waits in the outbox, which
                    // the writer sends only after the Welcome (seen in CI: a request routed in between never arrived).
                    _services.Register(this);
                    _registered = true;
                }

                await FlushControlAsync();
                return welcomed ? null : "bad Hello";
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return "closed by peer before Hello";
            }
        }
    }

    private bool AnswerHello(Frame frame)
    {
        if (frame.BodyCase != Frame.BodyOneofCase.Hello)
        {
            Refuse(ErrorCode.HelloRequired, $"the first frame must be Hello, got {frame.BodyCase}");
            return false;
        }

        Hello hello = frame.Hello;
        if (!hello.Versions.Contains(ProtocolVersion._1))
        {
            Refuse(ErrorCode.ProtocolVersionUnsupported, "this relay speaks protocol version 1 only");
            return false;
        }

        if (hello.MaxFrameBytes is > 0 and < MinDeclaredFrameBytes)
        {
            Refuse(ErrorCode.FrameTooLarge, $"Hello.max_frame_bytes {hello.MaxFrameBytes} is below {MinDeclaredFrameBytes}, the smallest the relay can send within (media chunks, receipts)");
            return false;
        }

        Agent = hello.Agent.Length > 128 ? hello.Agent[..128] : hello.Agent;
        _declared = ReceiveDeclaration.FromHello(hello);
        RelayLimits limits = _services.Limits;
        var welcome = new Welcome
        {
            Version = ProtocolVersion._1,
            PartnerId = Partner.Id,
            MaxFrameBytes = (uint)limits.MaxFrameBytes,
            IdleTimeoutMs = (uint)limits.IdleTimeout.TotalMilliseconds,
            RelayId = _services.RelayId,
            MaxConnections = (uint)Partner.MaxConnections,
            ShardCount = (uint)Partner.Mailbox.Shards.Length,
            DeliveryWindowEnvelopes = (uint)limits.DeliveryWindowEnvelopes,
            DeliveryWindowBytes = (ulong)limits.DeliveryWindowBytes,
            DedupWindowMs = (ulong)limits.DedupWindow.TotalMilliseconds,
            DedupCapacity = (uint)limits.DedupCapacityPerPartner,
            EvidencePublicKey = _services.Evidence is { } evidence ? Google.Protobuf.ByteString.CopyFrom(evidence.PublicKey) : Google.Protobuf.ByteString.Empty,
            MaxFrameBytesSent = hello.MaxFrameBytes != 0 ? Math.Min(hello.MaxFrameBytes, (uint)MaxFrameBytesSent(limits)) : (uint)MaxFrameBytesSent(limits),
        };
        welcome.AcceptedKinds.AddRange(Partner.AcceptedKinds);
        WriteFrame(new Frame { Welcome = welcome });
        return true;
    }

    /// <summary>
    /// Largest frame body the relay's own limits let it send: the Deliver of the largest envelope it accepts (a few
    /// bytes more than max_frame_bytes), or a media chunk or receipt if that is larger.
    /// </summary>
    private static int MaxFrameBytesSent(RelayLimits limits) =>
        Math.Max(WireFrames.MaxDeliverFrameBodyBytes(limits.MaxFrameBytes), Math.Max(MediaChunkWire.MaxHeaderBytes + Media.MediaRouter.DeliveryChunkBytes, WireFrames.MaxReceiptFrameBytes));

    /// <summary>Reads frames until the partner closes, sends GoAway, or breaks the protocol. Returns why it ended.</summary>
    private async Task<string> ReadLoopAsync()
    {
        int maxFrame = _services.Limits.MaxFrameBytes;
        CancellationToken abort = _abort.Token;
        while (true)
        {
            ReadResult result = await _input.ReadAsync(abort);
            Volatile.Write(ref _lastInputTicks, Environment.TickCount64);
            Volatile.Write(ref _pingOutstanding, 0);

            ReadOnlySequence<byte> buffer = result.Buffer;
            string? stop = null;
            int handled = 0;
            try
            {
                while (stop is null)
                {
                    ReadOnlySequence<byte> unread = buffer;
                    if (!FrameReader.TryReadFrame(ref buffer, maxFrame, out ReadOnlySequence<byte> frame))
                    {
                        break;
                    }

                    stop = HandleFrame(frame);
                    if (_logBusy)
                    {
                        buffer = unread; // this frame is handled again once the log has room
                        break;
                    }

                    handled++;
                }
            }
            catch (RelayException ex)
            {
                RelayLog.ProtocolViolation(_logger, ConnectionId, Partner.Id, ex.Code, ex.Detail);
                WriteError(ex.Code, ex.Detail, fatal: true);
                stop = ProtoNames.Of(ex.Code);
            }

            _services.Metrics.FramesReceived.Add(handled);

            if (_logBusy)
            {
                // Consumed what was handled and examined no further, so the next read returns the rest at once.
                _input.AdvanceTo(buffer.Start);
                await FlushControlAsync();
                long waitStarted = Environment.TickCount64;
                _services.Metrics.WalFullWaits.Add(1, Partner.MetricTag);
                await _services.Store.WaitForSpaceAsync(abort);
                _partialFrame.AddPause(Environment.TickCount64 - waitStarted);
                _logBusy = false;
                continue;
            }

            // What is left is one frame not yet whole: its rate and the partner's partial bytes are watched.
            long partial = buffer.Length;
            bool peerCompleted = result.IsCompleted;

            // Consumed what was handled; examined everything, so a partial frame waits for more bytes.
            _input.AdvanceTo(buffer.Start, buffer.End);
            if (stop is null && _partialFrame.Observe(partial, handled > 0, Environment.TickCount64) is { } slow)
            {
                RelayLog.PartialFrameRefused(_logger, ConnectionId, Partner.Id, slow.Code, slow.Detail);
                WriteFrame(new Frame { Error = new Error { Code = slow.Code, Detail = slow.Detail, Fatal = true, RetryAfterMs = slow.RetryAfterMs } });
                stop = slow.Code.ToString();
            }

            long replyWaitStarted = Environment.TickCount64;
            await FlushControlAsync();
            if (_acks.IsFull)
            {
                await _acks.WaitForRoomAsync(abort);
            }

            _partialFrame.AddPause(Environment.TickCount64 - replyWaitStarted);
            if (stop is not null)
            {
                return stop;
            }

            if (peerCompleted)
            {
                return partial == 0 ? "closed by peer" : "closed by peer mid-frame";
            }
        }
    }

    /// <summary>Handles one frame; returns non-null when the session must stop reading.</summary>
    private string? HandleFrame(in ReadOnlySequence<byte> frame)
    {
        if (EnvelopeHeader.TryRead(frame, out EnvelopeHeader header))
        {
            HandleEnvelope(frame, header);
            return null;
        }

        if (TryHandleMediaChunk(frame))
        {
            return null;
        }

        Frame parsed = ParseFrame(frame);
        switch (parsed.BodyCase)
        {
            case Frame.BodyOneofCase.Envelope:
                // Valid protobuf but not in the canonical single-field layout: re-encode it and take the same path.
                var canonical = new ReadOnlySequence<byte>(new Frame { Envelope = parsed.Envelope }.ToByteArray());
                if (!EnvelopeHeader.TryRead(canonical, out EnvelopeHeader reencoded))
                {
                    throw new RelayException(ErrorCode.MalformedFrame, "envelope could not be read");
                }

                HandleEnvelope(canonical, reencoded);
                return null;
            case Frame.BodyOneofCase.MediaOpen or Frame.BodyOneofCase.MediaChunk or Frame.BodyOneofCase.MediaClose
                or Frame.BodyOneofCase.MediaResume or Frame.BodyOneofCase.MediaReceived:
                HandleMediaFrame(parsed);
                return null;
            case Frame.BodyOneofCase.DeliveryAck:
                HandleDeliveryAck(parsed.DeliveryAck);
                return null;

            // Interop (PartnerSession.Interop.cs and the files it names).
            case Frame.BodyOneofCase.ConsentUpdate:
                HandleConsentUpdate(parsed.ConsentUpdate);
                return null;
            case Frame.BodyOneofCase.KeyBundleRequest:
                HandleKeyBundleRequest(parsed.KeyBundleRequest);
                return null;
            case Frame.BodyOneofCase.KeyBundleResponse:
                HandleKeyBundleResponse(parsed.KeyBundleResponse);
                return null;
            case Frame.BodyOneofCase.CapabilitiesRequest:
                HandleCapabilitiesRequest(parsed.CapabilitiesRequest);
                return null;
            case Frame.BodyOneofCase.Typing:
                HandleTyping(parsed.Typing);
                return null;
            case Frame.BodyOneofCase.ReadReceipt:
                HandleReadReceipt(parsed.ReadReceipt);
                return null;
            case Frame.BodyOneofCase.AbuseReport:
                HandleAbuseReport(parsed.AbuseReport);
                return null;
            case Frame.BodyOneofCase.AbuseNoticeAck:
                HandleAbuseNoticeAck(parsed.AbuseNoticeAck);
                return null;

            // Shared support (PartnerSession.Trace.cs, .Health.cs, .Evidence.cs).
            case Frame.BodyOneofCase.TraceRequest:
                HandleTraceRequest(parsed.TraceRequest);
                return null;
            case Frame.BodyOneofCase.HealthRequest:
                HandleHealthRequest(parsed.HealthRequest);
                return null;
            case Frame.BodyOneofCase.EvidenceRequest:
                HandleEvidenceRequest(parsed.EvidenceRequest);
                return null;
            case Frame.BodyOneofCase.Ping:
                WriteFrame(new Frame { Pong = new Pong { Nonce = parsed.Ping.Nonce } });
                return null;
            case Frame.BodyOneofCase.Pong:
                return null;
            case Frame.BodyOneofCase.GoAway:
                return "GoAway from partner";
            case Frame.BodyOneofCase.Error:
                return $"partner reported {Protocol.ProtoNames.Of(parsed.Error.Code)}: {parsed.Error.Detail}";
            case Frame.BodyOneofCase.None:
                throw new RelayException(ErrorCode.MalformedFrame, "frame has no body");
            default:
                throw new RelayException(ErrorCode.UnexpectedFrame, $"partners do not send {parsed.BodyCase} frames");
        }
    }

    private void HandleEnvelope(in ReadOnlySequence<byte> frame, in EnvelopeHeader header)
    {
        RouteOutcome outcome = _services.IsShuttingDown ? RouteOutcome.Refused(ErrorCode.ShuttingDown, "the relay is shutting down")
            : _services.IsDraining ? RouteOutcome.Refused(ErrorCode.Draining, "the relay is draining and takes no new envelopes; send them through another relay or retry later")
            : _services.Router.Route(Partner, frame, header, ConnectionId, rateLimitTaken: _busyRetry);
        if (outcome.LogBusy)
        {
            // Handled again once the log has room; its rate-limit tokens were taken now (the limiter runs before
            // the append), so the retry does not take them again.
            _logBusy = true;
            _busyRetry = true;
            return;
        }

        _busyRetry = false;

        if (outcome.Accepted)
        {
            // Sent by the writer once the log has made the envelope durable (see PendingAcks).
            _acks.Add(header.MessageId, outcome.AcceptedAtMs, outcome.Duplicate, outcome.DurableAt);
            _services.Metrics.EnvelopesAccepted.Add(outcome.Duplicate ? 0 : 1, Partner.MetricTag);
            if (!outcome.Duplicate)
            {
                Partner.CountEnvelopeIn();
            }
            else if (!_services.Support.IsEmpty)
            {
                _services.Support.EnvelopeDuplicate(Partner, ConnectionId, header.MessageId, NowMs());
            }

            return;
        }

        string detail = outcome.Detail ?? ProtoNames.Of(outcome.Refusal);
        if (_services.Refusals.Envelopes.ShouldLog(Partner.Id, outcome.Refusal, Environment.TickCount64))
        {
            RelayLog.EnvelopeRefused(_logger, Partner.Id, outcome.Refusal, detail);
        }

        _services.Metrics.EnvelopesRefused.Add(1, Partner.MetricTag, RelayMetrics.CodeTag(outcome.Refusal));
        if (!_services.Support.IsEmpty)
        {
            _services.Support.EnvelopeRefused(Partner, ConnectionId, frame.Slice(header.MessageIdSlice.Offset, header.MessageIdSlice.Length), (int)frame.Length, outcome.Refusal, detail, NowMs());
        }

        // The refusing rule's own retry-after (RATE_LIMITED's comes from its bucket), else the relay's for what is worth retrying.
        uint retryAfter = outcome.RetryAfterMs != 0 ? outcome.RetryAfterMs
            : outcome.Refusal is ErrorCode.QueueFull or ErrorCode.ShuttingDown or ErrorCode.StorageFull or ErrorCode.RetryLater or ErrorCode.Draining
            ? (uint)_services.Limits.QueueFullRetryAfter.TotalMilliseconds
            : 0;
        WriteFrame(new Frame
        {
            Error = new Error
            {
                Code = outcome.Refusal,
                Detail = detail,
                RetryAfterMs = retryAfter,
                MessageId = ByteString.CopyFrom(frame.Slice(header.MessageIdSlice.Offset, header.MessageIdSlice.Length).ToArray()),
            },
        });
    }

    private void HandleDeliveryAck(DeliveryAck ack)
    {
        ShardQueue[] shards = Partner.Mailbox.Shards;
        _ackReceipts.Clear();
        Routing.SupportEvents support = _services.Support;
        long now = support.IsEmpty ? 0 : NowMs();
        foreach (ulong deliveryId in ack.DeliveryIds)
        {
            int shard = ShardQueue.ShardOf(deliveryId);
            long acceptedAtMs = 0, firstSentAtMs = 0;
            AckResult result = shard < shards.Length ? shards[shard].Acknowledge(deliveryId, _ackReceipts, out acceptedAtMs, out firstSentAtMs) : AckResult.UnknownDelivery;
            if (result == AckResult.Acknowledged && !support.IsEmpty)
            {
                SettledEnvelope acked = _ackReceipts[^1];
                support.EnvelopeAcknowledged(acked.Sender, acked.Receipt.MessageId, Partner, ConnectionId, deliveryId, acceptedAtMs, firstSentAtMs, now);
            }

            if (result == AckResult.UnknownDelivery)
            {
                WriteFrame(new Frame { Error = new Error { Code = ErrorCode.UnknownDelivery, Detail = $"delivery id {deliveryId} was never delivered to partner '{Partner.Id}'" } });
            }
        }

        _services.Metrics.EnvelopesDelivered.Add(_ackReceipts.Count, Partner.MetricTag);
        Partner.CountEnvelopesOut(_ackReceipts.Count);
        _services.Receipts.Settle(_ackReceipts);
    }

    /// <summary>Relay time for the support events (wall clock, like accepted_at_ms).</summary>
    private long NowMs() => _services.Clock.GetUtcNow().ToUnixTimeMilliseconds();

    private static Frame ParseFrame(in ReadOnlySequence<byte> frame)
    {
        try
        {
            return Frame.Parser.ParseFrom(frame);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new RelayException(ErrorCode.MalformedFrame, "not a valid relayd.v1.Frame: " + ex.Message);
        }
    }

    private void Refuse(ErrorCode code, string detail)
    {
        _services.LogRefusal(ConnectionId, Remote, code, detail);
        WriteError(code, detail, fatal: true);
    }

    private void WriteError(ErrorCode code, string detail, bool fatal) =>
        WriteFrame(new Frame { Error = new Error { Code = code, Detail = detail, Fatal = fatal } });

    private void WriteFrame(Frame frame) => FrameWriter.Write(_control.Writer, frame);

    /// <summary>Publishes replies to the writer; waits while the partner is not reading them (backpressure).</summary>
    private async ValueTask FlushControlAsync()
    {
#pragma warning disable CA2012 // Awaited exactly once, after the writer is woken to consume what it made visible.
        ValueTask<FlushResult> flush = _control.Writer.FlushAsync(_abort.Token);
#pragma warning restore CA2012
        _writerSignal.Set();
        await flush;
    }
}
