using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>
/// Receipts handed to a session of the sender partner that closes before writing them are not lost with it: they go
/// to another session of the partner, or are held until it reconnects.
/// </summary>
public sealed class UnsentReceiptTests : IClassFixture<PkiFixture>
{
    private const int Count = 20;
    private readonly TestPki _pki;

    public UnsentReceiptTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Receipts_queued_for_a_sender_cut_for_not_reading_reach_it_when_it_reconnects()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.WriteTimeout = TimeSpan.FromSeconds(2));

        // alpha connects and never reads: its session's writer blocks on deliveries for it (16 MiB from beta).
        await using RawPartnerConnection alphaRaw = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca, receiveBufferBytes: 4096);
        await alphaRaw.SendHelloAsync();
        await using RelayClient beta = await relay.ConnectAsync("beta");
        byte[] large = Envelopes.RandomCiphertext(32 * 1024);
        await Task.WhenAll(Enumerable.Range(0, 512).Select(_ => beta.SendAsync(Envelopes.New("beta", "alpha", ciphertext: large)))).Within(60);

        // alpha's messages to beta: beta takes and acknowledges them, so their DELIVERED receipts queue at alpha's
        // blocked session. beta's next Ack comes after the relay has read beta's DeliveryAcks.
        Envelope[] sent = [.. Enumerable.Range(0, Count).Select(_ => Envelopes.New("alpha", "beta"))];
        foreach (Envelope envelope in sent)
        {
            await alphaRaw.SendAsync(new Frame { Envelope = envelope });
        }

        await beta.ConsumeAsync(_ => { }, limit: Count, TestContext.Current.CancellationToken).Within(30);
        await beta.SendAsync(Envelopes.New("beta", "gamma")).Within();

        await relay.WaitForLogAsync("a write made no progress");
        await relay.WaitForLogAsync("receipts not written");
        await alphaRaw.DisposeAsync();

        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        var delivered = new HashSet<ByteString>();
        while (delivered.Count < Count)
        {
            Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
            Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
            delivered.UnionWith(receipt.MessageIds);
        }

        Assert.Equal(sent.Select(e => e.MessageId).ToHashSet(), delivered);
    }
}
