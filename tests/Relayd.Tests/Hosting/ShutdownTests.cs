using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>The daemon as systemd runs it: SIGTERM means GoAway to every partner, finish, exit 0.</summary>
public sealed class ShutdownTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ShutdownTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task On_SIGTERM_the_relay_sends_GoAway_to_every_session_and_exits_0()
    {
        await using var relay = new RelaydProcess(_pki);
        await relay.StartAsync();
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await alpha.SendHelloAsync();
        await beta.SendHelloAsync();
        Assert.NotNull((await alpha.ReadFrameAsync())?.Welcome);
        Assert.NotNull((await beta.ReadFrameAsync())?.Welcome);

        relay.SendSigterm();
        Frame? alphaGoAway = await alpha.ReadFrameAsync();
        Frame? betaGoAway = await beta.ReadFrameAsync();
        await alpha.SendAsync(new Frame { GoAway = new GoAway() });
        await beta.SendAsync(new Frame { GoAway = new GoAway() });
        int exitCode = await relay.WaitForExitAsync(seconds: 20);

        Assert.Equal(ErrorCode.ShuttingDown, alphaGoAway?.GoAway?.Code);
        Assert.Equal(ErrorCode.ShuttingDown, betaGoAway?.GoAway?.Code);
        Assert.Equal(0, exitCode);
    }

    [Fact]
    public async Task On_SIGTERM_a_partner_that_stays_connected_gets_the_full_drain_timeout_and_the_relay_still_exits_0()
    {
        // System.CommandLine ended the process with 143 two seconds after SIGTERM, whatever shutdown_timeout_ms said.
        await using var relay = new RelaydProcess(_pki, shutdownTimeoutMs: 4000);
        await relay.StartAsync();
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await alpha.SendHelloAsync();
        Assert.NotNull((await alpha.ReadFrameAsync())?.Welcome);

        var drain = System.Diagnostics.Stopwatch.StartNew();
        relay.SendSigterm();
        Frame? goAway = await alpha.ReadFrameAsync(); // and alpha neither answers nor closes
        int exitCode = await relay.WaitForExitAsync(seconds: 30);
        drain.Stop();

        Assert.Equal(ErrorCode.ShuttingDown, goAway?.GoAway?.Code);
        Assert.True(exitCode == 0, $"exit code {exitCode} after {drain.ElapsedMilliseconds} ms; output:\n{relay.Output}");
        await relay.WaitForOutputAsync("Stopped; 1 sessions were still open at the deadline");
        Assert.True(drain.ElapsedMilliseconds >= 4000, $"stopped after {drain.ElapsedMilliseconds} ms, before the 4000 ms drain");
    }

    [Fact]
    public async Task Envelopes_accepted_before_SIGTERM_are_still_delivered_and_clients_close_cleanly()
    {
        await using var relay = new RelaydProcess(_pki);
        await relay.StartAsync();
        RelayClient alpha = await relay.ConnectAsync("alpha");
        RelayClient beta = await relay.ConnectAsync("beta");
        Envelope sent = Envelopes.New("alpha", "beta");
        await alpha.SendAsync(sent).Within();

        Deliver delivered = await beta.Deliveries.ReadAsync().Within();
        relay.SendSigterm();
        int exitCode = await relay.WaitForExitAsync(seconds: 20);

        Assert.Equal(sent, delivered.Envelope);
        Assert.Equal(0, exitCode);
        await alpha.Completion.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await beta.DisposeAsync();
        await alpha.DisposeAsync();
    }
}
