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
    private static string ProtoRoot => Path.Combine(ExternalProcess.RepositoryRoot, "src", "Relayd.Protocol", "Protos");

    public static async Task<RawPartnerConnection> HelloAsync(TestRelay relay, TestPki pki, string partner)
    {
        RawPartnerConnection connection = await RawPartnerConnection.ConnectAsync(relay.Port, pki.Partner(partner), pki.Ca);
        await SendAsync(connection, "hello { versions: PROTOCOL_VERSION_1 agent: \"protoc\" }");
        Assert.Contains("welcome {", await ReceiveAsync(connection), StringComparison.Ordinal);
        return connection;
    }

    public static async Task SendAsync(RawPartnerConnection connection, string textFormat)
    {
        ExternalProcess.Result result = await ExternalProcess.RunAsync(
            "protoc", [$"-I{ProtoRoot}", "--encode=relayd.v1.Frame", "relayd/v1/relayd.proto"], System.Text.Encoding.UTF8.GetBytes(textFormat));
        Assert.True(result.ExitCode == 0, "protoc --encode failed: " + result.StandardError);
        await connection.Stream.WriteAsync(Delimit(result.RawOutput), TestContext.Current.CancellationToken);
    }

    public static async Task<string> ReceiveAsync(RawPartnerConnection connection)
    {
        int length = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte[] one = new byte[1];
            await connection.Stream.ReadExactlyAsync(one, TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
            length |= (one[0] & 0x7F) << shift;
            if (one[0] < 0x80)
            {
                break;
            }
        }

        byte[] body = new byte[length];
        await connection.Stream.ReadExactlyAsync(body, TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        ExternalProcess.Result decoded = await ExternalProcess.RunAsync("protoc", [$"-I{ProtoRoot}", "--decode=relayd.v1.Frame", "relayd/v1/relayd.proto"], body);
        Assert.True(decoded.ExitCode == 0, "protoc --decode failed: " + decoded.StandardError);
        return decoded.StandardOutput;
    }

    /// <summary>Prefixes the varint length by hand: independent of the library's framing code.</summary>
    private static byte[] Delimit(byte[] message)
    {
        var bytes = new List<byte>();
        uint length = (uint)message.Length;
        while (length >= 0x80)
        {
            bytes.Add((byte)(length | 0x80));
            length >>= 7;
        }

        bytes.Add((byte)length);
        bytes.AddRange(message);
        return [.. bytes];
    }
}
