using System.Collections.Concurrent;
using CsCheck;
using Google.Protobuf;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support;

/// <summary>
/// The shared-support answers leak nothing across partners (a property test with random partners, messages and
/// questions, over real mutual TLS): a TraceRequest or EvidenceRequest about a message the asking partner neither sent
/// nor received, or naming the wrong sender partner, gets exactly the bytes an unknown id gets, while its own messages
/// are answered; a HealthReply counts the asking partner's own traffic only.
/// </summary>
public sealed class SupportIsolationTests : IClassFixture<PkiFixture>
{
    private static readonly string[] Partners = ["alpha", "beta", "gamma"];
    private static readonly string[] NamedSenders = [.. Partners, "zeta"]; // zeta: not a partner at all
    private readonly TestPki _pki;

    public SupportIsolationTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_partner_gets_the_unknown_id_answer_for_every_message_it_neither_sent_nor_received()
    {
        string keyPath = Path.Combine(Directory.CreateTempSubdirectory("relayd-isolation-").FullName, "evidence.key");
        Relayd.Support.Evidence.EvidenceKey.CreateFile(keyPath);
        await using TestRelay relay = TestRelay.Start(_pki, options =>
        {
            options.Evidence.KeyPath = keyPath; // evidence is on only with a key
            options.Evidence.SignInterval = TimeSpan.FromMilliseconds(50);
        });
        var peers = new Dictionary<string, Peer>(StringComparer.Ordinal);
        foreach (string partner in Partners)
        {
            peers[partner] = await Peer.ConnectAsync(relay, partner);
        }

        var sent = new List<SentMessage>();
        var accepted = Partners.ToDictionary(p => p, _ => 0L, StringComparer.Ordinal);
        var acknowledged = Partners.ToDictionary(p => p, _ => 0L, StringComparer.Ordinal);
        ulong requestId = 1000;

        Gen<(int From, int To)[]> messages = Gen.Select(Gen.Int[0, 2], Gen.Int[1, 2]).Select((from, step) => (from, (from + step) % 3)).Array[1, 5];
        Gen<(int Asker, int NamedSender, int Message, bool Known)[]> questions =
            Gen.Select(Gen.Int[0, 2], Gen.Int[0, NamedSenders.Length - 1], Gen.Int[0, 1000], Gen.Bool).Array[4, 10];

        try
        {
            await Gen.Select(messages, questions).SampleAsync(async sample =>
            {
                (var toSend, var asked) = sample;
                foreach ((int from, int to) in toSend)
                {
                    Envelope envelope = Envelopes.New(Partners[from], Partners[to]);
                    await peers[Partners[from]].SendEnvelopeAsync(envelope);
                    sent.Add(new SentMessage(Partners[from], Partners[to], envelope.MessageId));
                    accepted[Partners[from]]++;
                }

                foreach (SentMessage message in sent.TakeLast(toSend.Length))
                {
                    await peers[message.Recipient].DeliveredAsync(message.MessageId);
                    acknowledged[message.Recipient]++;
                }

                foreach ((int asker, int named, int index, bool known) in asked)
                {
                    Peer peer = peers[Partners[asker]];
                    string sender = NamedSenders[named];
                    SentMessage? message = known ? sent[index % sent.Count] : null;
                    ByteString id = message?.MessageId ?? ByteString.CopyFrom(Guid.NewGuid().ToByteArray());
                    bool entitled = message is not null && message.Sender == sender
                        && (message.Sender == peer.Partner || message.Recipient == peer.Partner);

                    foreach (Func<ulong, string, ByteString, Frame> ask in (Func<ulong, string, ByteString, Frame>[])[TraceRequestOf, EvidenceRequestOf])
                    {
                        ulong rid = ++requestId;
                        byte[] unknown = await peer.AskAsync(ask(rid, sender, ByteString.CopyFrom(Guid.NewGuid().ToByteArray())));
                        byte[] answer = entitled
                            ? await peer.AskUntilAsync(ask(rid, sender, id), a => !a.AsSpan().SequenceEqual(unknown))
                            : await peer.AskAsync(ask(rid, sender, id));
                        string what = $"{Frame.Parser.ParseFrom(answer).BodyCase} to {peer.Partner} about {message?.ToString() ?? "an unknown id"} named as sent by {sender}";
                        if (entitled)
                        {
                            Assert.False(answer.AsSpan().SequenceEqual(unknown), $"{what}: no more than for an unknown id, though {peer.Partner} took part");
                        }
                        else
                        {
                            Assert.True(answer.AsSpan().SequenceEqual(unknown), $"{what}: differs from the unknown-id answer ({Convert.ToHexString(answer)} vs {Convert.ToHexString(unknown)})");
                        }
                    }
                }

                foreach (Peer peer in peers.Values)
                {
                    HealthReply health = await peer.HealthUntilAsync(++requestId, h => (long)h.DeliveriesLast5Minutes >= acknowledged[peer.Partner]);
                    Assert.Equal(peer.Partner, health.PartnerId);
                    Assert.Equal(accepted[peer.Partner], (long)health.AcceptedLastHour);
                    Assert.Equal(acknowledged[peer.Partner], (long)health.DeliveriesLast5Minutes);
                }
            }, iter: 12, threads: 1);
        }
        finally
        {
            foreach (Peer peer in peers.Values)
            {
                await peer.DisposeAsync();
            }

            Directory.Delete(Path.GetDirectoryName(keyPath)!, recursive: true);
        }
    }

    private static Frame TraceRequestOf(ulong requestId, string sender, ByteString messageId) =>
        new() { TraceRequest = new TraceRequest { RequestId = requestId, SenderPartner = sender, MessageId = messageId } };

    private static Frame EvidenceRequestOf(ulong requestId, string sender, ByteString messageId) =>
        new() { EvidenceRequest = new EvidenceRequest { RequestId = requestId, SenderPartner = sender, MessageId = messageId } };

    private sealed record SentMessage(string Sender, string Recipient, ByteString MessageId)
    {
        public override string ToString() => $"{Sender} -> {Recipient} {Convert.ToHexString(MessageId.Span)}";
    }

    /// <summary>
    /// One partner on a raw connection: a read loop that acknowledges every delivery, resolves Acks by message id and
    /// answers by request id, keeping each answer's bytes exactly as the relay wrote them.
    /// </summary>
    private sealed class Peer : IAsyncDisposable
    {
        private readonly RawPartnerConnection _connection;
        private readonly SemaphoreSlim _writeLock = new(1, 1);
        private readonly ConcurrentDictionary<ByteString, TaskCompletionSource> _acks = new();
        private readonly ConcurrentDictionary<ByteString, TaskCompletionSource> _deliveries = new();
        private readonly ConcurrentDictionary<ulong, TaskCompletionSource<byte[]>> _answers = new();
        private readonly Task _reading;

        private Peer(string partner, RawPartnerConnection connection)
        {
            Partner = partner;
            _connection = connection;
            _reading = Task.Run(ReadLoopAsync);
        }

        public string Partner { get; }

        public static async Task<Peer> ConnectAsync(TestRelay relay, string partner)
        {
            RawPartnerConnection connection = await RawPartnerConnection.ConnectAsync(relay.Port, relay.Pki.Partner(partner), relay.Pki.Ca);
            await connection.SendHelloAsync();
            Frame? welcome = await connection.ReadFrameAsync();
            Assert.Equal(Frame.BodyOneofCase.Welcome, welcome?.BodyCase);
            return new Peer(partner, connection);
        }

        public async Task SendEnvelopeAsync(Envelope envelope)
        {
            TaskCompletionSource acked = _acks.GetOrAdd(envelope.MessageId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously));
            await SendAsync(new Frame { Envelope = envelope });
            await acked.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        }

        public Task DeliveredAsync(ByteString messageId) =>
            _deliveries.GetOrAdd(messageId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);

        public async Task<byte[]> AskAsync(Frame request)
        {
            ulong id = request.BodyCase switch
            {
                Frame.BodyOneofCase.TraceRequest => request.TraceRequest.RequestId,
                Frame.BodyOneofCase.EvidenceRequest => request.EvidenceRequest.RequestId,
                _ => request.HealthRequest.RequestId,
            };
            var answer = new TaskCompletionSource<byte[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            _answers[id] = answer;
            await SendAsync(request);
            return await answer.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        }

        /// <summary>Asks again until <paramref name="done"/> holds (the support features record off the data path), or a generous deadline.</summary>
        public async Task<byte[]> AskUntilAsync(Frame request, Func<byte[], bool> done)
        {
            DateTime deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                byte[] answer = await AskAsync(request);
                if (done(answer) || DateTime.UtcNow > deadline)
                {
                    return answer;
                }

                await Task.Delay(20, TestContext.Current.CancellationToken);
            }
        }

        public async Task<HealthReply> HealthUntilAsync(ulong requestId, Func<HealthReply, bool> done)
        {
            byte[] answer = await AskUntilAsync(new Frame { HealthRequest = new HealthRequest { RequestId = requestId } }, a => done(Frame.Parser.ParseFrom(a).HealthReply ?? new HealthReply()));
            Frame frame = Frame.Parser.ParseFrom(answer);
            Assert.Equal(Frame.BodyOneofCase.HealthReply, frame.BodyCase);
            return frame.HealthReply;
        }

        private async Task SendAsync(Frame frame)
        {
            await _writeLock.WaitAsync(TestContext.Current.CancellationToken);
            try
            {
                await _connection.SendAsync(frame);
            }
            finally
            {
                _writeLock.Release();
            }
        }

        private async Task ReadLoopAsync()
        {
            while (await _connection.ReadFrameBytesAsync(timeoutSeconds: 600) is { } body)
            {
                Frame frame = Frame.Parser.ParseFrom(body);
                switch (frame.BodyCase)
                {
                    case Frame.BodyOneofCase.Ack:
                        _acks.GetOrAdd(frame.Ack.MessageId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                        break;
                    case Frame.BodyOneofCase.Deliver:
                        await SendAsync(new Frame { DeliveryAck = new DeliveryAck { DeliveryIds = { frame.Deliver.DeliveryId } } });
                        _deliveries.GetOrAdd(frame.Deliver.Envelope.MessageId, _ => new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                        break;
                    case Frame.BodyOneofCase.TraceReply:
                        Answer(frame.TraceReply.RequestId, body);
                        break;
                    case Frame.BodyOneofCase.EvidenceReply:
                        Answer(frame.EvidenceReply.RequestId, body);
                        break;
                    case Frame.BodyOneofCase.HealthReply:
                        Answer(frame.HealthReply.RequestId, body);
                        break;
                    case Frame.BodyOneofCase.Error:
                        Answer(frame.Error.RequestId, body); // a refused request is an answer too: the assertions name it
                        break;
                }
            }

            foreach (TaskCompletionSource<byte[]> pending in _answers.Values)
            {
                pending.TrySetException(new IOException($"the relay closed {Partner}'s connection"));
            }
        }

        private void Answer(ulong requestId, byte[] body)
        {
            if (_answers.TryRemove(requestId, out TaskCompletionSource<byte[]>? answer))
            {
                answer.TrySetResult(body);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _connection.DisposeAsync();
            await _reading.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
            _writeLock.Dispose();
        }
    }
}
