using Relayd.Tests.Infrastructure;
using static Relayd.Tests.Interop.ProtocFrames;

namespace Relayd.Tests.Support.Trace;

/// <summary>TraceRequest and TraceReply as docs/protocol.md shows them: encoded and decoded by protoc, over a bare TLS connection.</summary>
public sealed class TraceProtocTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public TraceProtocTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_TraceRequest_encoded_by_protoc_gets_the_senders_events_and_a_foreign_partner_the_empty_reply()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await using RawPartnerConnection gamma = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("gamma"), _pki.Ca);
        foreach (RawPartnerConnection connection in (RawPartnerConnection[])[alpha, gamma])
        {
            await connection.Stream.WriteAsync(Delimit(await EncodeAsync("hello { versions: PROTOCOL_VERSION_1 agent: \"protoc\" }")), TestContext.Current.CancellationToken);
            await ReadRawFrameAsync(connection);
        }

        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync("""
            envelope { message_id: "0123456789abcdef" sender_partner: "alpha" sender_user: "alice"
              recipient_partner: "beta" recipient_user: "bob" content_kind: CONTENT_KIND_TEXT ciphertext: "opaque" }
            """)), TestContext.Current.CancellationToken);
        Assert.Contains("ack {", await DecodeAsync(await ReadRawFrameAsync(alpha)), StringComparison.Ordinal);

        const string Request = """trace_request { request_id: 7 sender_partner: "alpha" message_id: "0123456789abcdef" }""";
        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync(Request)), TestContext.Current.CancellationToken);
        string own = await DecodeAsync(await ReadRawFrameAsync(alpha));
        await gamma.Stream.WriteAsync(Delimit(await EncodeAsync(Request)), TestContext.Current.CancellationToken);
        byte[] foreign = await ReadRawFrameAsync(gamma);
        await gamma.Stream.WriteAsync(Delimit(await EncodeAsync(Request.Replace("0123456789abcdef", "fedcba9876543210", StringComparison.Ordinal))), TestContext.Current.CancellationToken);
        byte[] unknown = await ReadRawFrameAsync(gamma);

        Assert.Contains("trace_reply {", own, StringComparison.Ordinal);
        Assert.Contains("request_id: 7", own, StringComparison.Ordinal);
        Assert.Contains("kind: TRACE_RECEIVED", own, StringComparison.Ordinal);
        Assert.Contains("kind: TRACE_ACCEPTED", own, StringComparison.Ordinal);
        Assert.DoesNotContain("alice", own, StringComparison.Ordinal);
        Assert.Equal(unknown, foreign);
        Assert.Equal("trace_reply {\n  request_id: 7\n}\n", await DecodeAsync(foreign));
    }
}
