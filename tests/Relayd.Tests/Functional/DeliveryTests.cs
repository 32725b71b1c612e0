using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>Envelopes cross the relay intact, and senders learn their fate: Ack, then a DELIVERED receipt.</summary>
public sealed class DeliveryTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public DeliveryTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_text_envelope_from_alpha_reaches_beta_byte_identical_and_alpha_gets_Ack_then_Receipt()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope sent = Envelopes.New("alpha", "beta", ciphertext: Envelopes.RandomCiphertext(3000));

        Ack ack = await alpha.SendAsync(sent).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync().Within();
        await beta.AcknowledgeAsync(delivered);
        Receipt receipt = await alpha.Receipts.ReadAsync().Within();

        Assert.Equal(sent.MessageId, ack.MessageId);
        Assert.False(ack.Duplicate);
        Assert.InRange(ack.AcceptedAtMs, DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        Assert.Equal(sent, delivered.Envelope); // every field, ciphertext byte for byte
        Assert.Equal(ack.AcceptedAtMs, delivered.AcceptedAtMs);
        Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
        Assert.Equal([sent.MessageId], receipt.MessageIds);
    }

    [Fact]
    public async Task Beta_can_send_to_alpha_over_the_same_connections()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope toBeta = Envelopes.New("alpha", "beta");
        Envelope toAlpha = Envelopes.New("beta", "alpha");

        await alpha.SendAsync(toBeta).Within();
        await beta.SendAsync(toAlpha).Within();
        Deliver atBeta = await beta.Deliveries.ReadAsync().Within();
        Deliver atAlpha = await alpha.Deliveries.ReadAsync().Within();
        await alpha.AcknowledgeAsync(atAlpha);
        Receipt forBeta = await beta.Receipts.ReadAsync().Within();

        Assert.Equal(toBeta, atBeta.Envelope);
        Assert.Equal(toAlpha, atAlpha.Envelope);
        Assert.Equal([toAlpha.MessageId], forBeta.MessageIds);
    }

    [Fact]
    public async Task Envelopes_for_an_offline_partner_wait_and_are_delivered_when_it_connects()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope[] sent = [.. Enumerable.Range(0, 20).Select(_ => Envelopes.New("alpha", "beta"))];
        foreach (Envelope envelope in sent)
        {
            await alpha.SendAsync(envelope).Within();
        }

        await using RelayClient beta = await relay.ConnectAsync("beta");
        var received = new List<Envelope>();
        while (received.Count < sent.Length)
        {
            received.Add((await beta.Deliveries.ReadAsync().Within()).Envelope);
        }

        Assert.Equal(sent, received);
    }

    [Fact]
    public async Task Unacknowledged_deliveries_are_delivered_again_to_the_next_session_of_the_partner()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope sent = Envelopes.New("alpha", "beta");
        RelayClient firstBeta = await relay.ConnectAsync("beta");
        await alpha.SendAsync(sent).Within();
        Deliver first = await firstBeta.Deliveries.ReadAsync().Within();
        await firstBeta.DisposeAsync(); // gone without acknowledging

        await using RelayClient secondBeta = await relay.ConnectAsync("beta");
        Deliver again = await secondBeta.Deliveries.ReadAsync().Within();

        Assert.Equal(first.DeliveryId, again.DeliveryId);
        Assert.Equal(sent, again.Envelope);
    }

    [Fact]
    public async Task A_resend_with_the_same_message_id_gets_the_original_Ack_and_is_delivered_once()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope sent = Envelopes.New("alpha", "beta");

        Ack first = await alpha.SendAsync(sent).Within();
        await Task.Delay(5, TestContext.Current.CancellationToken);
        Ack resend = await alpha.SendAsync(sent).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync().Within();

        Assert.True(resend.Duplicate);
        Assert.Equal(first.AcceptedAtMs, resend.AcceptedAtMs);
        Assert.Equal(sent, delivered.Envelope);
        Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 300));
    }

    [Fact]
    public async Task A_resend_on_another_session_while_the_original_is_not_yet_durable_is_acked_only_once_it_is()
    {
        var disk = new HeldDisk();
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Storage.FileSync = disk);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient again = await relay.ConnectAsync("alpha");
        Envelope sent = Envelopes.New("alpha", "beta");

        disk.Hold(); // the commit that would make it durable hangs in fdatasync
        Task<Ack> original = alpha.SendAsync(sent);
        Task<Ack> resend = again.SendAsync(sent);
        Task both = Task.WhenAll(original, resend);
        Assert.NotSame(both, await Task.WhenAny(both, Task.Delay(500, TestContext.Current.CancellationToken))); // neither Ack before fdatasync
        Assert.False(original.IsCompleted || resend.IsCompleted, "an Ack went out before its envelope was durable");

        disk.Release();
        Ack[] acks = await Task.WhenAll(original, resend).Within();
        Assert.Single(acks, a => a.Duplicate); // whichever came second
        Assert.Equal(acks[0].AcceptedAtMs, acks[1].AcceptedAtMs);
    }

    [Fact]
    public async Task An_envelope_to_a_partner_the_relay_does_not_know_is_refused_with_UNKNOWN_RECIPIENT_PARTNER()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        RelayException refusal = await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New("alpha", "nobody")));

        Assert.Equal(ErrorCode.UnknownRecipientPartner, refusal.Code);
    }

    [Fact]
    public async Task A_content_kind_the_recipient_partner_does_not_accept_is_refused_with_CONTENT_KIND_UNSUPPORTED()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Partners.First(p => p.Id == "beta").AcceptedKinds.Add(ContentKind.Text));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope video = Envelopes.New("alpha", "beta");
        video.ContentKind = ContentKind.Video;

        RelayException refusal = await Envelopes.RefusedAsync(() => alpha.SendAsync(video));
        Assert.Equal(ErrorCode.ContentKindUnsupported, refusal.Code);
        await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta")); // a text envelope still passes
    }

    [Fact]
    public async Task An_envelope_already_expired_is_refused_with_EXPIRED()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope stale = Envelopes.New("alpha", "beta");
        stale.ExpiresAtMs = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds();

        RelayException refusal = await Envelopes.RefusedAsync(() => alpha.SendAsync(stale));

        Assert.Equal(ErrorCode.Expired, refusal.Code);
    }

    [Fact]
    public async Task An_envelope_that_expires_while_waiting_is_never_delivered_and_the_sender_hears_EXPIRED()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope shortLived = Envelopes.New("alpha", "beta");
        shortLived.ExpiresAtMs = DateTimeOffset.UtcNow.AddMilliseconds(300).ToUnixTimeMilliseconds();
        await alpha.SendAsync(shortLived).Within();
        await Task.Delay(600, TestContext.Current.CancellationToken);

        await using RelayClient beta = await relay.ConnectAsync("beta");
        Receipt receipt = await alpha.Receipts.ReadAsync().Within();

        Assert.Equal(ReceiptStatus.ExpiredUndelivered, receipt.Status);
        Assert.Equal([shortLived.MessageId], receipt.MessageIds);
        Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 300));
    }
}

/// <summary>A sender that was away when its message was delivered still learns it when it comes back.</summary>
public sealed class HeldReceiptTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public HeldReceiptTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Receipts_for_a_disconnected_sender_are_held_and_sent_when_it_reconnects()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        Envelope sent = Envelopes.New("alpha", "beta");
        RelayClient alpha = await relay.ConnectAsync("alpha");
        await alpha.SendAsync(sent).Within();
        await alpha.CloseAsync();

        await using RelayClient beta = await relay.ConnectAsync("beta");
        await beta.AcknowledgeAsync(await beta.Deliveries.ReadAsync().Within());
        await WaitUntilAsync(() => relay.Server.Partners.Find("alpha")!.HeldReceipts.Count == 1);
        await using RelayClient alphaAgain = await relay.ConnectAsync("alpha");
        Receipt receipt = await alphaAgain.Receipts.ReadAsync().Within();

        Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
        Assert.Equal([sent.MessageId], receipt.MessageIds);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.True(condition());
    }
}
