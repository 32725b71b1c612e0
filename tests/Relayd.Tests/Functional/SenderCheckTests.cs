using Google.Protobuf;
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

    /// <summary>
    /// The impersonation found by an independent client: a second sender_partner behind a tag whose varint has bit 32
    /// set. Stock parsers keep the tag's low 32 bits and read sender_partner = "alpha"; the relay used to skip it as an
    /// unknown field and deliver it as gamma's.
    /// </summary>
    [Fact]
    public async Task A_sender_partner_hidden_behind_a_64_bit_tag_is_MALFORMED_FRAME_and_nothing_reaches_the_recipient()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RawPartnerConnection gamma = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("gamma"), _pki.Ca);
        await gamma.SendHelloAsync();
        Assert.Equal(Frame.BodyOneofCase.Welcome, (await gamma.ReadFrameAsync())?.BodyCase);
        byte[] envelope = [.. Envelopes.New(from: "gamma", to: "beta").ToByteArray(), 0x92, 0x80, 0x80, 0x80, 0x10, 0x05, .. "alpha"u8];
        Assert.Equal("alpha", Envelope.Parser.ParseFrom(envelope).SenderPartner); // what beta's parser would read

        byte[] frame = [0x1A, .. Varint(envelope.Length), .. envelope];
        await gamma.Stream.WriteAsync((byte[])[.. Varint(frame.Length), .. frame], TestContext.Current.CancellationToken);
        List<Frame> replies = await gamma.ReadUntilClosedAsync();

        Frame error = Assert.Single(replies, f => f.BodyCase == Frame.BodyOneofCase.Error);
        Assert.Equal(ErrorCode.MalformedFrame, error.Error.Code);
        Assert.Contains("32 bits", error.Error.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(replies, f => f.BodyCase == Frame.BodyOneofCase.Ack);
        Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 500));
    }

    private static byte[] Varint(int value)
    {
        var bytes = new List<byte>();
        for (uint v = (uint)value; ; v >>= 7)
        {
            if (v < 0x80)
            {
                bytes.Add((byte)v);
                return [.. bytes];
            }

            bytes.Add((byte)(v | 0x80));
        }
    }

    [Fact]
    public async Task After_a_refusal_the_connection_keeps_working()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New(from: "gamma", to: "beta")));
        Envelope sent = Envelopes.New("alpha", "beta");
        await Envelopes.AcceptedAsync(alpha, sent);
    }
}
