using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>Bad bytes on a real TLS connection: a typed Error frame, then the relay closes; nothing large is allocated.</summary>
[Collection(nameof(MemorySensitiveCollection))]
public sealed class FrameLimitTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public FrameLimitTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_declared_length_of_2_GiB_gets_FRAME_TOO_LARGE_and_a_close_without_a_large_allocation()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection raw = await HelloAsync(relay);
        long before = GC.GetTotalAllocatedBytes(precise: true);

        await raw.Stream.WriteAsync(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x08, 1, 2, 3 }, TestContext.Current.CancellationToken);
        List<Frame> replies = await raw.ReadUntilClosedAsync();

        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Error error = Assert.Single(replies).Error;
        Assert.Equal(ErrorCode.FrameTooLarge, error.Code);
        Assert.True(error.Fatal);
        Assert.True(allocated < 32 * 1024 * 1024, $"the process allocated {allocated / 1024} KiB while refusing a 2 GiB frame");
    }

    [Fact]
    public async Task A_length_varint_with_11_continuation_bytes_gets_MALFORMED_FRAME_and_a_close()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection raw = await HelloAsync(relay);

        await raw.Stream.WriteAsync(Enumerable.Repeat((byte)0xFF, 11).Append((byte)0x01).ToArray(), TestContext.Current.CancellationToken);
        List<Frame> replies = await raw.ReadUntilClosedAsync();

        Assert.Equal(ErrorCode.MalformedFrame, Assert.Single(replies).Error.Code);
    }

    [Fact]
    public async Task Bytes_that_are_not_a_protobuf_Frame_get_MALFORMED_FRAME()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection raw = await HelloAsync(relay);

        await raw.Stream.WriteAsync(new byte[] { 4, 0xFF, 0xFF, 0xFF, 0xFF }, TestContext.Current.CancellationToken);
        List<Frame> replies = await raw.ReadUntilClosedAsync();

        Assert.Equal(ErrorCode.MalformedFrame, Assert.Single(replies).Error.Code);
    }

    [Fact]
    public async Task The_first_frame_must_be_Hello()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection raw = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);

        await raw.SendAsync(new Frame { Envelope = Envelopes.New("alpha", "beta") });
        List<Frame> replies = await raw.ReadUntilClosedAsync();

        Assert.Equal(ErrorCode.HelloRequired, Assert.Single(replies).Error.Code);
    }

    [Fact]
    public async Task A_Hello_without_a_supported_version_gets_PROTOCOL_VERSION_UNSUPPORTED()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection raw = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);

        await raw.SendAsync(new Frame { Hello = new Hello { Versions = { (ProtocolVersion)7 } } });
        List<Frame> replies = await raw.ReadUntilClosedAsync();

        Assert.Equal(ErrorCode.ProtocolVersionUnsupported, Assert.Single(replies).Error.Code);
    }

    [Fact]
    public async Task A_Deliver_frame_from_a_partner_is_UNEXPECTED_FRAME()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection raw = await HelloAsync(relay);

        await raw.SendAsync(new Frame { Deliver = new Deliver { DeliveryId = 1 } });
        List<Frame> replies = await raw.ReadUntilClosedAsync();

        Assert.Equal(ErrorCode.UnexpectedFrame, Assert.Single(replies).Error.Code);
    }

    private async Task<RawPartnerConnection> HelloAsync(TestRelay relay)
    {
        RawPartnerConnection raw = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await raw.SendHelloAsync();
        Frame? welcome = await raw.ReadFrameAsync();
        Assert.Equal(Frame.BodyOneofCase.Welcome, welcome?.BodyCase);
        return raw;
    }
}

/// <summary>Silent partners are pinged, then closed.</summary>
public sealed class IdleTimeoutTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public IdleTimeoutTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_silent_partner_gets_a_Ping_then_IDLE_TIMEOUT_and_a_close()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.IdleTimeout = TimeSpan.FromMilliseconds(300));
        await using RawPartnerConnection raw = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await raw.SendHelloAsync();

        List<Frame> frames = await raw.ReadUntilClosedAsync();

        Assert.Equal(Frame.BodyOneofCase.Welcome, frames[0].BodyCase);
        Assert.Contains(frames, f => f.BodyCase == Frame.BodyOneofCase.Ping);
        Assert.Equal(ErrorCode.IdleTimeout, frames[^1].Error?.Code);
    }

    [Fact]
    public async Task A_partner_that_answers_pings_stays_connected()
    {
        // Idle for three and a half timeouts. The timeout is a second, not less: under a loaded CI machine (this suite
        // runs real relay processes in parallel) a 200 ms one was missed by a delayed Pong.
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.IdleTimeout = TimeSpan.FromSeconds(1));
        await using Relayd.Protocol.RelayClient alpha = await relay.ConnectAsync("alpha");

        await Task.Delay(3500, TestContext.Current.CancellationToken);
        Envelope sent = Envelopes.New("alpha", "beta");
        await Envelopes.AcceptedAsync(alpha, sent);
        Assert.False(alpha.Completion.IsCompleted);
    }
}
