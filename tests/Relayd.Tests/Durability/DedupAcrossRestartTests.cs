using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Durability;

/// <summary>
/// A sender that never saw its Ack resends; when the first send was stored, the resend must be recognised even after
/// the relay restarted (stopped or crashed): the original Ack again, marked duplicate, and one delivery.
/// </summary>
public sealed class DedupAcrossRestartTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public DedupAcrossRestartTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Theory(Timeout = 120_000)]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_resend_after_a_restart_gets_the_original_Ack_marked_duplicate_and_beta_receives_the_envelope_once(bool killed)
    {
        await using var relay = new RelaydProcess(_pki);
        await relay.StartAsync();
        Envelope sent = Envelopes.New("alpha", "beta");
        Envelope next = Envelopes.New("alpha", "beta"); // same conversation, sent after the resend
        Ack original;
        await using (RelayClient alpha = await relay.ConnectAsync("alpha", receipts: false))
        {
            original = await alpha.SendAsync(sent).Within();
            await Task.Delay(20, TestContext.Current.CancellationToken); // so a fresh accepted_at_ms would differ
            if (killed)
            {
                await relay.KillAsync(); // alpha still connected, as in a crash
            }
        }

        if (killed)
        {
            await relay.StartAsync();
        }
        else
        {
            await relay.RestartAsync(kill: false);
        }

        await using RelayClient alphaAgain = await relay.ConnectAsync("alpha", receipts: false);
        Ack resend = await alphaAgain.SendAsync(sent).Within();
        await alphaAgain.SendAsync(next).Within();
        await using RelayClient beta = await relay.ConnectAsync("beta", receipts: false);
        Deliver first = await beta.Deliveries.ReadAsync().Within(20);
        await beta.AcknowledgeAsync(first);
        Deliver second = await beta.Deliveries.ReadAsync().Within(20);
        await beta.AcknowledgeAsync(second);
        bool nothingMore = await Envelopes.StaysEmpty(beta.Deliveries, 1000);

        Assert.False(original.Duplicate);
        Assert.True(resend.Duplicate, "the resend after the restart was not recognised as a duplicate");
        Assert.Equal(sent.MessageId, resend.MessageId);
        Assert.Equal(original.AcceptedAtMs, resend.AcceptedAtMs);
        Assert.Equal(sent, first.Envelope);
        Assert.Equal(original.AcceptedAtMs, first.AcceptedAtMs);
        Assert.Equal(next, second.Envelope); // not the resend a second time
        Assert.True(nothingMore, "beta received more than the two envelopes");
    }

    [Fact]
    public async Task A_resend_after_a_restart_of_an_envelope_beta_already_acknowledged_is_acked_as_duplicate_and_not_delivered_again()
    {
        await using var relay = new RelaydProcess(_pki);
        await relay.StartAsync();
        Envelope sent = Envelopes.New("alpha", "beta");
        Envelope next = Envelopes.New("alpha", "beta");
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        await using (RelayClient firstBeta = await relay.ConnectAsync("beta", receipts: false))
        {
            Ack ack = await alpha.SendAsync(sent).Within();
            Deliver delivered = await firstBeta.Deliveries.ReadAsync().Within();
            await firstBeta.AcknowledgeAsync(delivered);
            Receipt receipt = await alpha.Receipts.ReadAsync().Within(); // the relay has taken beta's DeliveryAck
            Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
            Assert.False(ack.Duplicate);
        }

        // SIGTERM: a clean stop persists beta's acknowledgement (after SIGKILL a redelivery would be allowed).
        await relay.RestartAsync(kill: false);
        await using RelayClient alphaAgain = await relay.ConnectAsync("alpha", receipts: false);
        await using RelayClient beta = await relay.ConnectAsync("beta", receipts: false);
        Ack resend = await alphaAgain.SendAsync(sent).Within();
        await alphaAgain.SendAsync(next).Within();
        Deliver only = await beta.Deliveries.ReadAsync().Within(20);
        await beta.AcknowledgeAsync(only);
        bool nothingMore = await Envelopes.StaysEmpty(beta.Deliveries, 1000);

        Assert.True(resend.Duplicate, "the resend after the restart was not recognised as a duplicate");
        Assert.Equal(next, only.Envelope);
        Assert.True(nothingMore, "beta received more than the new envelope");
    }
}
