using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>
/// Hello and Welcome: what a partner declares in Hello is honoured, Welcome tells it the relay's limits, and the
/// handshake's edge cases (pipelining, silence, a second Hello) end the way docs/protocol.md says.
/// </summary>
public sealed class HelloTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public HelloTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Hello_and_an_envelope_written_together_get_Welcome_and_Ack_without_further_input()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        Envelope envelope = Envelopes.New("alpha", "beta");
        var hello = new Hello { Agent = "pipelining" };
        hello.Versions.Add(ProtocolVersion._1);

        // One write, so one TLS record: the relay reads Hello and the envelope behind it in the same read.
        using var both = new MemoryStream();
        new Frame { Hello = hello }.WriteDelimitedTo(both);
        new Frame { Envelope = envelope }.WriteDelimitedTo(both);
        await alpha.Stream.WriteAsync(both.ToArray(), TestContext.Current.CancellationToken);
        Frame? welcome = await alpha.ReadFrameAsync();
        Frame? ack = await ReadOrNullAsync(alpha, seconds: 5);

        Assert.Equal(Frame.BodyOneofCase.Welcome, welcome?.BodyCase);
        Assert.True(ack is not null, "no Ack within 5 s of the pipelined Hello + Envelope");
        Assert.Equal(envelope.MessageId, ack.Ack?.MessageId);
    }

    [Fact]
    public async Task A_second_Hello_is_UNEXPECTED_FRAME_and_closes_the_connection()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await alpha.SendHelloAsync();
        Assert.Equal(Frame.BodyOneofCase.Welcome, (await alpha.ReadFrameAsync())?.BodyCase);

        await alpha.SendHelloAsync();
        List<Frame> replies = await alpha.ReadUntilClosedAsync();

        Error error = Assert.Single(replies).Error;
        Assert.Equal(ErrorCode.UnexpectedFrame, error.Code);
        Assert.True(error.Fatal);
        Assert.Contains("Hello", error.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_DeliveryAck_naming_an_unknown_delivery_gets_UNKNOWN_DELIVERY_and_the_connection_stays_open()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await beta.SendHelloAsync();
        Assert.Equal(Frame.BodyOneofCase.Welcome, (await beta.ReadFrameAsync())?.BodyCase);

        await beta.SendAsync(new Frame { DeliveryAck = new DeliveryAck { DeliveryIds = { 12345 } } });
        Frame? error = await beta.ReadFrameAsync();
        await beta.SendAsync(new Frame { Ping = new Ping { Nonce = 7 } });
        Frame? pong = await beta.ReadFrameAsync();

        Assert.Equal(ErrorCode.UnknownDelivery, error?.Error?.Code);
        Assert.False(error!.Error.Fatal);
        Assert.Contains("12345", error.Error.Detail, StringComparison.Ordinal);
        Assert.Equal(7UL, pong?.Pong?.Nonce);
    }

    [Fact]
    public async Task Content_kinds_a_partner_leaves_out_of_Hello_accepted_kinds_are_refused_to_the_sender_with_CONTENT_KIND_UNSUPPORTED()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { AcceptedKinds = [ContentKind.Text] });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope image = Envelopes.New("alpha", "beta");
        image.ContentKind = ContentKind.Image;
        using var blob = new LoadGen.Media.BlobStream(1000, seed: 1);
        MediaOpen photo = MediaBlobs.Open("alpha", "beta", blob, kind: ContentKind.Image);
        blob.Position = 0;

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(image));
        RelayException refusedMedia = await Envelopes.RefusedAsync(() => alpha.SendMediaAsync(photo, blob).Within());
        Envelope text = Envelopes.New("alpha", "beta");
        await alpha.SendAsync(text).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();

        Assert.Equal(ErrorCode.ContentKindUnsupported, refused.Code);
        Assert.Contains("CONTENT_KIND_IMAGE", refused.Detail, StringComparison.Ordinal);
        Assert.Contains("Hello", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.ContentKindUnsupported, refusedMedia.Code);
        Assert.Equal(text.MessageId, delivered.Envelope.MessageId);
    }

    [Fact]
    public async Task The_kinds_of_several_connections_intersect_and_the_last_declaration_holds_while_none_is_connected()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        RelayClient wide = await relay.ConnectAsync("beta", o => o with { AcceptedKinds = [ContentKind.Text, ContentKind.Image] });
        RelayClient narrow = await relay.ConnectAsync("beta", o => o with { AcceptedKinds = [ContentKind.Text] });

        ErrorCode? imageWithBoth = await OutcomeAsync(alpha, ContentKind.Image);
        await narrow.DisposeAsync();
        await WaitForSessionsAsync(relay, "beta", 1);
        ErrorCode? imageWithWide = await OutcomeAsync(alpha, ContentKind.Image);
        await wide.DisposeAsync();
        await WaitForSessionsAsync(relay, "beta", 0);
        ErrorCode? imageWithNone = await OutcomeAsync(alpha, ContentKind.Image);
        ErrorCode? voiceWithNone = await OutcomeAsync(alpha, ContentKind.Voice);
        await using RelayClient any = await relay.ConnectAsync("beta");
        ErrorCode? voiceWithAny = await OutcomeAsync(alpha, ContentKind.Voice);

        Assert.Equal(ErrorCode.ContentKindUnsupported, imageWithBoth);
        Assert.Null(imageWithWide);
        Assert.Null(imageWithNone);
        Assert.Equal(ErrorCode.ContentKindUnsupported, voiceWithNone);
        Assert.Null(voiceWithAny);
    }

    [Fact]
    public async Task A_partner_configured_for_TEXT_only_stays_TEXT_only_whatever_its_Hello_declares()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Partners.First(p => p.Id == "beta").AcceptedKinds.Add(ContentKind.Text));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { AcceptedKinds = [ContentKind.Text, ContentKind.Image] });

        Envelope image = Envelopes.New("alpha", "beta");
        image.ContentKind = ContentKind.Image;
        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(image));

        Assert.Equal(ErrorCode.ContentKindUnsupported, refused.Code);
        Assert.Contains("configuration", refused.Detail, StringComparison.Ordinal);
        Assert.Equal([ContentKind.Text], beta.Welcome.AcceptedKinds);
    }

    [Fact]
    public async Task An_envelope_whose_Deliver_frame_would_exceed_the_recipients_Hello_max_frame_bytes_is_refused_with_FRAME_TOO_LARGE()
    {
        const int limit = 128 * 1024;
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { MaxFrameBytes = limit });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope large = Envelopes.New("alpha", "beta", ciphertext: Envelopes.RandomCiphertext(limit));
        Envelope fits = Envelopes.New("alpha", "beta", ciphertext: Envelopes.RandomCiphertext(limit - 1024));

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(large));
        await alpha.SendAsync(fits).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();

        Assert.Equal(ErrorCode.FrameTooLarge, refused.Code);
        Assert.Contains($"{limit}", refused.Detail, StringComparison.Ordinal);
        Assert.Contains("'beta'", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(fits.MessageId, delivered.Envelope.MessageId);
        Assert.Equal((uint)limit, beta.Welcome.MaxFrameBytesSent);
        Assert.False(beta.Completion.IsCompleted);
    }

    [Fact]
    public async Task A_Hello_max_frame_bytes_below_128_KiB_is_refused_with_FRAME_TOO_LARGE_before_Welcome()
    {
        await using TestRelay relay = TestRelay.Start(_pki);

        RelayException refused = await Envelopes.RefusedAsync(() => relay.ConnectAsync("beta", o => o with { MaxFrameBytes = 64 * 1024 }));

        Assert.Equal(ErrorCode.FrameTooLarge, refused.Code);
        Assert.Contains("131072", refused.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Welcome_tells_the_partner_the_limits_it_is_held_to()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Partners.First(p => p.Id == "alpha").MaxConnections = 3;
            o.Limits.ShardCount = 4;
            o.Limits.DeliveryWindowEnvelopes = 1000;
            o.Limits.DeliveryWindowBytes = 2 * 1024 * 1024;
            o.Limits.DedupWindow = TimeSpan.FromHours(2);
            o.Limits.DedupCapacityPerPartner = 5000;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RawPartnerConnection raw = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await raw.SendHelloAsync(); // max_frame_bytes 0: no limit of its own

        Welcome welcome = alpha.Welcome;
        Welcome undeclared = (await raw.ReadFrameAsync())!.Welcome;

        Assert.Equal(3U, welcome.MaxConnections);
        Assert.Equal(4U, welcome.ShardCount);
        Assert.Equal(1000U, welcome.DeliveryWindowEnvelopes);
        Assert.Equal(2UL * 1024 * 1024, welcome.DeliveryWindowBytes);
        Assert.Equal(2UL * 3600 * 1000, welcome.DedupWindowMs);
        Assert.Equal(5000U, welcome.DedupCapacity);
        Assert.Equal((uint)relay.Options.Limits.MaxConnectionsPerPartner, undeclared.MaxConnections);
        // A Deliver wraps the largest envelope the relay accepts in a few bytes more; the client's 2 MiB is above that.
        Assert.InRange(undeclared.MaxFrameBytesSent, undeclared.MaxFrameBytes + 1, undeclared.MaxFrameBytes + 32);
        Assert.Equal(undeclared.MaxFrameBytesSent, welcome.MaxFrameBytesSent);
    }

    /// <summary>The outcome of sending one envelope of <paramref name="kind"/> to beta: null when acknowledged, else the refusal's code.</summary>
    private static async Task<ErrorCode?> OutcomeAsync(RelayClient alpha, ContentKind kind)
    {
        Envelope envelope = Envelopes.New("alpha", "beta");
        envelope.ContentKind = kind;
        try
        {
            await alpha.SendAsync(envelope).Within();
            return null;
        }
        catch (RelayException ex)
        {
            return ex.Code;
        }
    }

    private static async Task WaitForSessionsAsync(TestRelay relay, string partner, int count)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(10));
        while (relay.Server.Sessions.Count(s => s.Partner.Id == partner) != count)
        {
            await Task.Delay(10, deadline.Token);
        }
    }

    private static async Task<Frame?> ReadOrNullAsync(RawPartnerConnection connection, int seconds)
    {
        try
        {
            return await connection.ReadFrameAsync(seconds);
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }
}
