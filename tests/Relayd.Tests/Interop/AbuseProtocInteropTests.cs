using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// The abuse and read-receipt frames from an independent peer: encoded by protoc from text format, sent over a bare
/// TLS connection, the relay's answers decoded by protoc.
/// </summary>
public sealed class AbuseProtocInteropTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public AbuseProtocInteropTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task An_AbuseReport_encoded_by_protoc_gets_an_AbuseReportAck_and_the_reported_partner_an_AbuseNotice()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await ProtocPeer.HelloAsync(relay, _pki, "alpha");
        await using RawPartnerConnection beta = await ProtocPeer.HelloAsync(relay, _pki, "beta");

        await ProtocPeer.SendAsync(alpha, """
            abuse_report {
              report_id: "\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020"
              reporter_partner: "alpha"
              reporter_user: "alice"
              reported_partner: "beta"
              reported_user: "bob"
              message_ids: "0123456789abcdef"
              reason: ABUSE_SPAM
              note: "spam from bob"
            }
            """);
        string ack = await ProtocPeer.ReceiveAsync(alpha);
        string notice = await ProtocPeer.ReceiveAsync(beta);

        Assert.Contains("abuse_report_ack {", ack, StringComparison.Ordinal);
        Assert.Contains("unverified_messages: 1", ack, StringComparison.Ordinal);
        Assert.Contains("accepted_at_ms:", ack, StringComparison.Ordinal);
        Assert.Contains("abuse_notice {", notice, StringComparison.Ordinal);
        Assert.Contains("notice_id: 1", notice, StringComparison.Ordinal);
        Assert.Contains("unverified_message_ids: \"0123456789abcdef\"", notice, StringComparison.Ordinal);
        Assert.Contains("reason: ABUSE_SPAM", notice, StringComparison.Ordinal);

        await ProtocPeer.SendAsync(beta, "abuse_notice_ack { notice_ids: 1 }");
        await ProtocPeer.SendAsync(beta, "ping { nonce: 7 }");
        Assert.Contains("pong {", await ProtocPeer.ReceiveAsync(beta), StringComparison.Ordinal); // the ack was taken, nothing else came
        Assert.Equal(0, relay.Server.Abuse!.PendingFor(relay.Server.Partners.Find("beta")!));
    }

    [Fact]
    public async Task A_ReadReceipt_encoded_by_protoc_for_an_id_never_delivered_gets_a_non_fatal_UNKNOWN_MESSAGE()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection beta = await ProtocPeer.HelloAsync(relay, _pki, "beta");

        await ProtocPeer.SendAsync(beta, """
            read_receipt {
              sender_partner: "alpha"
              message_ids: "0123456789abcdef"
              read_at_ms: 1765000000000
            }
            """);
        string error = await ProtocPeer.ReceiveAsync(beta);

        Assert.Contains("code: UNKNOWN_MESSAGE", error, StringComparison.Ordinal);
        Assert.Contains("1 of the 1 message ids", error, StringComparison.Ordinal);
        Assert.DoesNotContain("fatal: true", error, StringComparison.Ordinal);
    }
}

/// <summary>A bare TLS peer speaking frames protoc encodes and decodes (as in <see cref="ProtocInteropTests"/>).</summary>
internal static class ProtocPeer
{
    public static async Task<RawPartnerConnection> HelloAsync(TestRelay relay, TestPki pki, string partner)
    {
        RawPartnerConnection connection = await RawPartnerConnection.ConnectAsync(relay.Port, pki.Partner(partner), pki.Ca);
        await SendAsync(connection, "hello { versions: PROTOCOL_VERSION_1 agent: \"protoc\" }");
        Assert.Contains("welcome {", await ReceiveAsync(connection), StringComparison.Ordinal);
        return connection;
    }

    public static Task SendAsync(RawPartnerConnection connection, string textFormat) => ProtocFrames.SendAsync(connection, textFormat);

    public static Task<string> ReceiveAsync(RawPartnerConnection connection) => ProtocFrames.ReceiveAsync(connection);
}
