using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Durability;

/// <summary>
/// Retention: an envelope its recipient did not take before it expired is never delivered, and its sender learns
/// EXPIRED_UNDELIVERED — also when the relay restarted (stopped or crashed) in between. A short configured retention
/// (<c>default_retention_seconds = 2</c>), not a fake clock.
/// </summary>
public sealed class ExpiryTests : IClassFixture<PkiFixture>
{
    private const int RetentionSeconds = 2;
    // Retention runs as a periodic pass in the relay: allow for its interval on top of the retention itself.
    private const int ReceiptWithinSeconds = 30;

    private readonly TestPki _pki;

    public ExpiryTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task An_envelope_for_an_offline_beta_expires_alpha_gets_EXPIRED_UNDELIVERED_and_beta_connecting_later_receives_nothing()
    {
        await using RelaydProcess relay = await StartAsync();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope sent = Envelopes.New("alpha", "beta");
        await alpha.SendAsync(sent).Within();

        Receipt receipt = await alpha.Receipts.ReadAsync().Within(ReceiptWithinSeconds);
        await AssertBetaReceivesOnlyAFreshEnvelopeAsync(relay, alpha);

        Assert.Equal(ReceiptStatus.ExpiredUndelivered, receipt.Status);
        Assert.Equal([sent.MessageId], receipt.MessageIds);
    }

    [Theory(Timeout = 120_000)]
    [InlineData(true, false)]  // crashed, expires in the restarted process
    [InlineData(true, true)]   // crashed, expires while no relay runs
    [InlineData(false, true)]  // stopped, expires while no relay runs
    public async Task An_envelope_stored_before_a_restart_expires_alpha_gets_EXPIRED_UNDELIVERED_and_beta_receives_nothing(bool killed, bool expiresWhileDown)
    {
        await using RelaydProcess relay = await StartAsync();
        Envelope sent = Envelopes.New("alpha", "beta");
        await using (RelayClient alpha = await relay.ConnectAsync("alpha", receipts: false))
        {
            await alpha.SendAsync(sent).Within();
        }

        if (killed)
        {
            await relay.KillAsync();
        }
        else
        {
            Assert.Equal(0, await relay.TerminateAsync());
        }

        if (expiresWhileDown)
        {
            await Task.Delay(TimeSpan.FromSeconds(RetentionSeconds + 1), TestContext.Current.CancellationToken);
        }

        await relay.StartAsync();
        await using RelayClient alphaAgain = await relay.ConnectAsync("alpha");
        Receipt receipt = await alphaAgain.Receipts.ReadAsync().Within(ReceiptWithinSeconds);
        await AssertBetaReceivesOnlyAFreshEnvelopeAsync(relay, alphaAgain);

        Assert.Equal(ReceiptStatus.ExpiredUndelivered, receipt.Status);
        Assert.Equal([sent.MessageId], receipt.MessageIds);
    }

    private async Task<RelaydProcess> StartAsync()
    {
        var relay = new RelaydProcess(_pki, limitsKeys: $"default_retention_seconds = {RetentionSeconds}");
        await relay.StartAsync();
        return relay;
    }

    /// <summary>
    /// Beta connects; a fresh envelope sent now (same conversation) is the first and only thing it receives, which
    /// shows the expired one was not merely slow.
    /// </summary>
    private static async Task AssertBetaReceivesOnlyAFreshEnvelopeAsync(RelaydProcess relay, RelayClient alpha)
    {
        await using RelayClient beta = await relay.ConnectAsync("beta", receipts: false);
        Envelope fresh = Envelopes.New("alpha", "beta");
        await alpha.SendAsync(fresh).Within();
        Deliver first = await beta.Deliveries.ReadAsync().Within(20);
        await beta.AcknowledgeAsync(first);
        bool nothingMore = await Envelopes.StaysEmpty(beta.Deliveries, 1000);

        Assert.Equal(fresh, first.Envelope);
        Assert.True(nothingMore, "beta received something besides the fresh envelope");
    }
}
