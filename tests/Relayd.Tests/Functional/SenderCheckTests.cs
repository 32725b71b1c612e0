using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>A partner can only send as itself.</summary>
public sealed class SenderCheckTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public SenderCheckTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task An_envelope_claiming_another_sender_partner_is_refused_with_SENDER_MISMATCH_and_nothing_reaches_the_recipient()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope forged = Envelopes.New(from: "gamma", to: "beta");

        RelayException refusal = await Envelopes.RefusedAsync(() => alpha.SendAsync(forged));

        Assert.Equal(ErrorCode.SenderMismatch, refusal.Code);
        Assert.Contains("alpha", refusal.Detail, StringComparison.Ordinal);
        Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 500));
    }

    [Fact]
    public async Task After_a_refusal_the_connection_keeps_working()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New(from: "gamma", to: "beta")));
        Ack ack = await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();

        Assert.NotNull(ack);
    }
}
