using System.Buffers;
using System.Buffers.Binary;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Client;

/// <summary>
/// ConsumeInPlaceAsync hands each delivery over as a view of the input buffer (no copy, no message objects), over
/// real TLS: what the view shows is what was sent, each one handed over is acknowledged (its sender gets DELIVERED),
/// and one the store threw on is not (the relay delivers it again on the next connection).
/// </summary>
public sealed class ConsumeInPlaceTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ConsumeInPlaceTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Each_delivery_is_shown_as_sent_and_acknowledged_then_the_rest_go_to_the_channel()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        // 200 KiB spans several of the input buffer's segments: the view's sequences are not one span.
        Envelope[] sent = [Envelopes.New("alpha", "beta"), Envelopes.New("alpha", "beta", ciphertext: Envelopes.RandomCiphertext(200 * 1024)), Envelopes.New("alpha", "beta")];
        var stored = new List<(ulong DeliveryId, Envelope Envelope, long AcceptedAtMs)>();
        Task<long> consuming = beta.ConsumeInPlaceAsync((in DeliveryView d) => stored.Add((d.DeliveryId, new Envelope
        {
            MessageId = ByteString.CopyFrom(d.MessageId.ToArray()),
            SenderPartner = d.SenderPartner,
            SenderUser = ByteString.CopyFrom(d.SenderUser.ToArray()),
            RecipientPartner = d.RecipientPartner,
            RecipientUser = ByteString.CopyFrom(d.RecipientUser.ToArray()),
            ContentKind = d.ContentKind,
            Ciphertext = ByteString.CopyFrom(d.Ciphertext.ToArray()),
            ClientTimestampMs = d.ClientTimestampMs,
            ExpiresAtMs = d.ExpiresAtMs,
        }, d.AcceptedAtMs)), limit: sent.Length, TestContext.Current.CancellationToken);

        var acks = new List<Ack>();
        foreach (Envelope envelope in sent)
        {
            acks.Add(await alpha.SendAsync(envelope).Within());
        }

        Assert.Equal(sent.Length, await consuming.Within());
        Assert.Equal(sent.Select(e => e.Clone()), stored.Select(s => s.Envelope));
        Assert.Equal(acks.Select(a => a.AcceptedAtMs), stored.Select(s => s.AcceptedAtMs));
        Assert.Equal(stored.Count, stored.Select(s => s.DeliveryId).Distinct().Count());

        // Acknowledged: alpha hears DELIVERED for every one.
        var delivered = new HashSet<UInt128>();
        while (delivered.Count < sent.Length)
        {
            Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
            Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
            delivered.UnionWith(receipt.MessageIds.Select(id => BinaryPrimitives.ReadUInt128BigEndian(id.Span)));
        }

        Assert.Equal(sent.Select(e => BinaryPrimitives.ReadUInt128BigEndian(e.MessageId.Span)).ToHashSet(), delivered);

        // Past the limit, deliveries go to the channel again.
        Envelope after = Envelopes.New("alpha", "beta");
        await alpha.SendAsync(after).Within();
        Deliver next = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
        Assert.Equal(after.MessageId, next.Envelope.MessageId);
    }

    [Fact]
    public async Task A_delivery_the_store_threw_on_is_not_acknowledged_and_comes_again_on_the_next_connection()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope sent = Envelopes.New("alpha", "beta");
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            Task<long> consuming = beta.ConsumeInPlaceAsync((in DeliveryView _) => throw new IOException("disk full on beta's side"), cancellationToken: TestContext.Current.CancellationToken);
            await alpha.SendAsync(sent).Within();
            IOException thrown = await Assert.ThrowsAsync<IOException>(() => consuming.Within());
            Assert.Equal("disk full on beta's side", thrown.Message);
            _ = beta.ConsumeInPlaceAsync((in DeliveryView _) => { }); // the failed one ended: a new one may start
            Assert.Throws<InvalidOperationException>(() => { _ = beta.ConsumeInPlaceAsync((in DeliveryView _) => { }); }); // one at a time (thrown, not faulted)
        }

        await using RelayClient again = await relay.ConnectAsync("beta");
        Deliver redelivered = await again.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
        Assert.Equal(sent.MessageId, redelivered.Envelope.MessageId);
    }
}
