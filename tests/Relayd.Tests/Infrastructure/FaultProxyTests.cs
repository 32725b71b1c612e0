using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Authentication;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// The fault proxy itself, against a real relay over real TLS: each fault does what it says, seen from both ends.
/// A second proxy behind the first (a tap, without faults) counts what really reached the relay's side.
/// </summary>
public sealed class FaultProxyTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public FaultProxyTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Without_faults_a_client_through_the_proxy_is_relayed_as_if_connected_directly()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using FaultProxy proxy = FaultProxy.Start(relay.Port);
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { Port = proxy.Port });
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope sent = Envelopes.New("alpha", "beta");

        Ack ack = await alpha.SendAsync(sent).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync().Within();

        Assert.False(ack.Duplicate);
        Assert.Equal(sent, delivered.Envelope);
        FaultProxyConnection connection = Assert.Single(proxy.Connections);
        Assert.False(connection.WasCut || connection.WasDropped);
        Assert.Equal(connection.BytesReceived(ProxyDirection.ToTarget), connection.BytesForwarded(ProxyDirection.ToTarget));
    }

    [Fact]
    public async Task Cut_at_byte_N_toward_the_relay_forwards_exactly_N_bytes_and_the_client_handshake_fails()
    {
        const int N = 100; // inside the ClientHello
        await using TestRelay relay = TestRelay.Start(_pki);
        await using FaultProxy tap = FaultProxy.Start(relay.Port);
        await using FaultProxy cutter = FaultProxy.Start(tap.Port);
        cutter.CutNewConnectionsAfter(ProxyDirection.ToTarget, N);

        Exception failure = await FailureOfAsync(() => relay.ConnectAsync("alpha", o => o with { Port = cutter.Port }));
        FaultProxyConnection atRelay = await tap.NextConnectionAsync();
        await atRelay.Closed.Within();

        Assert.True(failure is AuthenticationException or IOException, $"the handshake failed with {failure}");
        Assert.True((await cutter.NextConnectionAsync()).WasCut);
        Assert.Equal(N, atRelay.BytesReceived(ProxyDirection.ToTarget));
        Assert.Equal(N, atRelay.BytesForwarded(ProxyDirection.ToTarget));
        await relay.WaitForLogAsync($"from {atRelay.TargetSideEndPoint} refused during TLS");
    }

    [Fact]
    public async Task Cut_N_bytes_into_an_envelope_toward_the_relay_fails_the_send_and_the_relay_never_accepts_the_partial_frame()
    {
        const int N = 10;
        await using TestRelay relay = TestRelay.Start(_pki);
        await using FaultProxy tap = FaultProxy.Start(relay.Port);
        await using FaultProxy cutter = FaultProxy.Start(tap.Port);
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { Port = cutter.Port });
        await using RelayClient beta = await relay.ConnectAsync("beta");
        FaultProxyConnection cut = await cutter.NextConnectionAsync();
        FaultProxyConnection atRelay = await tap.NextConnectionAsync();
        long beforeEnvelope = cut.BytesForwarded(ProxyDirection.ToTarget);
        cut.CutAfterMore(ProxyDirection.ToTarget, N);
        Envelope envelope = Envelopes.New("alpha", "beta");

        Exception failure = await FailureOfAsync(() => alpha.SendAsync(envelope));
        await alpha.Completion.ContinueWith(_ => { }, TaskScheduler.Default).Within();
        await atRelay.Closed.Within();

        Assert.True(failure is IOException or RelayException, $"the send failed with {failure}");
        Assert.True(cut.WasCut);
        Assert.Equal(beforeEnvelope + N, atRelay.BytesReceived(ProxyDirection.ToTarget));
        await relay.WaitForLogAsync("of partner alpha closed");

        // Nothing of the cut envelope was accepted: sent again directly, it is new to the relay and arrives once.
        await using RelayClient again = await relay.ConnectAsync("alpha");
        Ack ack = await again.SendAsync(envelope).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync().Within();
        Assert.False(ack.Duplicate);
        Assert.Equal(envelope, delivered.Envelope);
    }

    [Fact]
    public async Task Cut_N_bytes_into_a_delivery_toward_the_client_ends_the_client_connection_and_the_relay_session()
    {
        const int N = 10;
        await using TestRelay relay = TestRelay.Start(_pki);
        await using FaultProxy cutter = FaultProxy.Start(relay.Port);
        await using FaultProxy tap = FaultProxy.Start(cutter.Port); // on the client's side: counts what reached it
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { Port = tap.Port });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        FaultProxyConnection cut = await cutter.NextConnectionAsync();
        FaultProxyConnection atClient = await tap.NextConnectionAsync();
        long beforeDelivery = cut.BytesForwarded(ProxyDirection.ToClient);
        cut.CutAfterMore(ProxyDirection.ToClient, N);

        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        // beta's connection ends only after the tap passed on all it got from the cutter (the cutter's FIN comes last).
        await beta.Completion.ContinueWith(_ => { }, TaskScheduler.Default).Within();

        Assert.True(cut.WasCut);
        Assert.Equal(beforeDelivery + N, atClient.BytesReceived(ProxyDirection.ToClient));
        Assert.False(beta.Deliveries.TryRead(out _));
        await relay.WaitForLogAsync("of partner beta closed");
    }

    [Fact]
    public async Task Delay_adds_its_latency_to_each_direction_of_a_round_trip()
    {
        TimeSpan toRelay = TimeSpan.FromMilliseconds(200);
        TimeSpan toClient = TimeSpan.FromMilliseconds(150);
        await using TestRelay relay = TestRelay.Start(_pki);
        await using FaultProxy proxy = FaultProxy.Start(relay.Port);
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { Port = proxy.Port });
        proxy.DelayToTarget = toRelay;
        proxy.DelayToClient = toClient;

        var roundTrip = Stopwatch.StartNew();
        Ack ack = await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        roundTrip.Stop();

        Assert.False(ack.Duplicate);
        Assert.True(roundTrip.Elapsed >= toRelay + toClient, $"an envelope and its ack took {roundTrip.Elapsed.TotalMilliseconds} ms, less than the {(toRelay + toClient).TotalMilliseconds} ms of delay");
    }

    [Fact]
    public async Task Drop_closes_both_sides_at_once()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using FaultProxy proxy = FaultProxy.Start(relay.Port);
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { Port = proxy.Port });
        FaultProxyConnection connection = await proxy.NextConnectionAsync();
        Assert.False(alpha.Completion.IsCompleted);

        proxy.DropAll();

        await alpha.Completion.ContinueWith(_ => { }, TaskScheduler.Default).Within();
        await relay.WaitForLogAsync("of partner alpha closed");
        await connection.Closed.Within();
        Assert.True(connection.WasDropped);
        Exception failure = await FailureOfAsync(() => alpha.SendAsync(Envelopes.New("alpha", "beta")));
        Assert.True(failure is IOException or RelayException or SocketException, $"a send after the drop failed with {failure}");
    }

    /// <summary>The exception <paramref name="action"/> fails with; a timeout is not a failure of the connection.</summary>
    private static async Task<Exception> FailureOfAsync(Func<Task> action)
    {
        Task attempt = action();
        await Task.WhenAny(attempt).Within();
        return attempt.Exception?.GetBaseException() ?? throw new Xunit.Sdk.XunitException("the call succeeded through the fault");
    }
}
