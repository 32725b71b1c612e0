using System.Buffers;
using System.Buffers.Binary;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Trace;

/// <summary>The data path reports each step of a message to the support seam (ISupportEvents), in order, over real TLS.</summary>
public sealed class SupportEventsDataPathTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public SupportEventsDataPathTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_delivered_envelope_is_reported_accepted_durable_delivered_acknowledged_and_its_receipt_handed_to_alpha()
    {
        var recorded = new RecordingEvents();
        await using TestRelay relay = TestRelay.Start(_pki, recorded);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope sent = Envelopes.New("alpha", "beta", ciphertext: Envelopes.RandomCiphertext(3000));
        UInt128 id = BinaryPrimitives.ReadUInt128BigEndian(sent.MessageId.Span);

        Ack ack = await alpha.SendAsync(sent).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync().Within();
        await beta.AcknowledgeAsync(delivered);
        await alpha.Receipts.ReadAsync().Within();

        List<Step> steps = recorded.Of(id);
        string[] kinds = [.. steps.Select(s => s.Kind)];
        Assert.Equal("accepted", kinds[0]);
        Assert.Contains("durable", kinds);

        // Delivery and the Ack's durability race (the Deliver may leave before the log's fsync); the rest is ordered.
        Assert.Equal(["accepted", "delivered", "acknowledged", "receipt"], kinds.Where(k => k != "durable"));
        Assert.Single(kinds, "durable");

        Step accepted = steps[0];
        Assert.Equal(3000, accepted.CiphertextBytes);
        Assert.Equal(ack.AcceptedAtMs, accepted.AtMs);
        Step delivery = steps.Single(s => s.Kind == "delivered");
        Assert.Equal(delivered.DeliveryId, delivery.DeliveryId);
        Step acked = steps.Single(s => s.Kind == "acknowledged");
        Assert.Equal(delivered.DeliveryId, acked.DeliveryId);
        Assert.Equal(ack.AcceptedAtMs, acked.AcceptedAtMs);
        Assert.Equal(delivery.ConnectionId, acked.ConnectionId);
        Step receipt = steps.Single(s => s.Kind == "receipt");
        Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
        Assert.NotEqual(0, receipt.ConnectionId); // handed to alpha's session, not held
        Assert.NotEqual(delivery.ConnectionId, receipt.ConnectionId);

        Assert.Equal(["opened alpha", "opened beta"], recorded.Sessions());
        Assert.Equal(0, recorded.Miscounted);
    }

    [Fact]
    public async Task A_refused_envelope_is_reported_with_its_code_and_a_resend_as_duplicate()
    {
        var recorded = new RecordingEvents();
        await using TestRelay relay = TestRelay.Start(_pki, recorded);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope unknown = Envelopes.New("alpha", "nobody");
        Envelope sent = Envelopes.New("alpha", "beta");

        RelayException refused = await Assert.ThrowsAsync<RelayException>(() => alpha.SendAsync(unknown).Within());
        await alpha.SendAsync(sent).Within();
        Ack again = await alpha.SendAsync(sent).Within();

        Assert.True(again.Duplicate);
        Step refusal = Assert.Single(recorded.Of(BinaryPrimitives.ReadUInt128BigEndian(unknown.MessageId.Span)));
        Assert.Equal("refused", refusal.Kind);
        Assert.Equal(refused.Code, refusal.Code);
        Assert.Equal(["accepted", "durable", "duplicate"], recorded.Of(BinaryPrimitives.ReadUInt128BigEndian(sent.MessageId.Span)).Select(s => s.Kind));
    }

    private sealed record Step(string Kind, long AtMs, long ConnectionId, ulong DeliveryId = 0, long AcceptedAtMs = 0, int CiphertextBytes = 0, ReceiptStatus Status = default, ErrorCode Code = default);

    /// <summary>Records every event in the order the data path reported it.</summary>
    private sealed class RecordingEvents : ISupportEvents
    {
        private readonly Lock _lock = new();
        private readonly List<(UInt128 Id, Step Step)> _steps = [];
        private readonly List<string> _sessions = [];
        private readonly List<(long ConnectionId, DurableMark Mark, UInt128 Id)> _accepted = [];
        private int _miscounted;

        /// <summary>Batches of Acks whose count was not the number of accepted envelopes their marks cover.</summary>
        public int Miscounted => Volatile.Read(ref _miscounted);

        public List<Step> Of(UInt128 id)
        {
            lock (_lock)
            {
                return [.. _steps.Where(s => s.Id == id).Select(s => s.Step)];
            }
        }

        public List<string> Sessions()
        {
            lock (_lock)
            {
                return [.. _sessions];
            }
        }

        private void Add(UInt128 id, Step step)
        {
            lock (_lock)
            {
                _steps.Add((id, step));
            }
        }

        public void SessionOpened(PartnerInfo partner, long connectionId, long nowMs)
        {
            lock (_lock)
            {
                _sessions.Add("opened " + partner.Id);
            }
        }

        public void SessionClosed(PartnerInfo partner, long connectionId, string reason, long nowMs)
        {
            lock (_lock)
            {
                _sessions.Add($"closed {partner.Id} {reason}");
            }
        }

        public void EnvelopeRefused(PartnerInfo sender, long connectionId, in ReadOnlySequence<byte> messageId, int frameBytes, ErrorCode code, string detail, long nowMs) =>
            Add(messageId.Length == 16 ? BinaryPrimitives.ReadUInt128BigEndian(messageId.ToArray()) : 0, new Step("refused", nowMs, connectionId, Code: code));

        public void EnvelopeAccepted(in AcceptedEnvelope envelope)
        {
            Add(envelope.MessageId, new Step("accepted", envelope.AcceptedAtMs, envelope.ConnectionId, CiphertextBytes: (int)envelope.Ciphertext.Length));
            lock (_lock)
            {
                _accepted.Add((envelope.ConnectionId, envelope.DurableAt, envelope.MessageId));
            }
        }

        public void EnvelopeDuplicate(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs) => Add(messageId, new Step("duplicate", nowMs, connectionId));

        // A batch of Acks: each envelope of the session whose mark it covers is durable (as the trace's query reads it).
        public void EnvelopesDurable(PartnerInfo sender, long connectionId, DurableMark first, DurableMark through, int envelopes, long nowMs)
        {
            List<UInt128> covered;
            lock (_lock)
            {
                covered = [.. _accepted.Where(a => a.ConnectionId == connectionId && a.Mark >= first && a.Mark <= through).Select(a => a.Id)];
            }

            if (covered.Count != envelopes)
            {
                Interlocked.Increment(ref _miscounted); // not thrown here: the data path's writer called this
            }

            foreach (UInt128 id in covered)
            {
                Add(id, new Step("durable", nowMs, connectionId));
            }
        }

        public void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs) =>
            Add(messageId, new Step("delivered", nowMs, connectionId, deliveryId));

        public void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long firstSentAtMs, long nowMs) =>
            Add(messageId, new Step("acknowledged", nowMs, connectionId, deliveryId, acceptedAtMs));

        public void ReceiptProduced(PartnerInfo sender, UInt128 messageId, ReceiptStatus status, ErrorCode code, long connectionId, long nowMs) =>
            Add(messageId, new Step("receipt", nowMs, connectionId, Status: status, Code: code));

        public void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs) => Add(messageId, new Step("expired", nowMs, 0));

        public void EnvelopeRefusedQueued(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, ErrorCode code, long nowMs) => Add(messageId, new Step("refused-queued", nowMs, 0));

        public void EnvelopePurged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs) => Add(messageId, new Step("purged", nowMs, 0));

        public void MediaEvent(in MediaEventInfo media) => Add(media.TransferId, new Step("media " + media.Kind, media.NowMs, media.ConnectionId));

        public void KeyBundleEvent(PartnerInfo requester, PartnerInfo? target, ulong requestId, KeyBundleEventKind kind, ErrorCode status, long nowMs) =>
            Add(requestId, new Step("keybundle " + kind, nowMs, 0, Code: status));

        public void AbuseReported(PartnerInfo reporter, PartnerInfo? reported, in ReadOnlySequence<byte> reportId, UInt128 messageId, long nowMs) =>
            Add(messageId, new Step("abuse", nowMs, 0));
    }
}
