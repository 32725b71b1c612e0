using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;
using static Relayd.Tests.Interop.ProtocFrames;

namespace Relayd.Tests.Interop;

/// <summary>
/// An independent peer: frames encoded and decoded by protoc from text format, sent over a bare TLS connection.
/// Proves the wire format is standard protobuf delimited framing, usable from any language.
/// </summary>
public sealed class ProtocInteropTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ProtocInteropTests(PkiFixture fixture) => _pki = fixture.Pki;


    [Fact]
    public async Task Frames_encoded_by_protoc_are_understood_and_the_replies_decode_with_protoc()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);

        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync("hello { versions: PROTOCOL_VERSION_1 agent: \"protoc\" }")), TestContext.Current.CancellationToken);
        await beta.Stream.WriteAsync(Delimit(await EncodeAsync("hello { versions: PROTOCOL_VERSION_1 agent: \"protoc\" }")), TestContext.Current.CancellationToken);
        string welcome = await DecodeAsync(await ReadRawFrameAsync(alpha));
        await ReadRawFrameAsync(beta);

        const string envelope = """
            envelope {
              message_id: "\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020"
              sender_partner: "alpha"
              sender_user: "alice"
              recipient_partner: "beta"
              recipient_user: "bob"
              content_kind: CONTENT_KIND_TEXT
              ciphertext: "opaque signal ciphertext"
              client_timestamp_ms: 1765000000000
            }
            """;
        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync(envelope)), TestContext.Current.CancellationToken);
        string ack = await DecodeAsync(await ReadRawFrameAsync(alpha));
        string deliver = await DecodeAsync(await ReadRawFrameAsync(beta));

        Assert.Contains("welcome {", welcome, StringComparison.Ordinal);
        Assert.Contains("partner_id: \"alpha\"", welcome, StringComparison.Ordinal);
        Assert.Contains("version: PROTOCOL_VERSION_1", welcome, StringComparison.Ordinal);
        Assert.Contains("ack {", ack, StringComparison.Ordinal);
        Assert.Contains("message_id: \"\\001\\002\\003\\004\\005\\006\\007\\010\\t\\n\\013\\014\\r\\016\\017\\020\"", ack, StringComparison.Ordinal);
        Assert.Contains("deliver {", deliver, StringComparison.Ordinal);
        Assert.Contains("ciphertext: \"opaque signal ciphertext\"", deliver, StringComparison.Ordinal);
        Assert.Contains("recipient_user: \"bob\"", deliver, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_envelope_with_a_forged_sender_encoded_by_protoc_gets_an_Error_naming_SENDER_MISMATCH()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync("hello { versions: PROTOCOL_VERSION_1 }")), TestContext.Current.CancellationToken);
        await ReadRawFrameAsync(alpha);

        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync("envelope { message_id: \"0123456789abcdef\" sender_partner: \"beta\" recipient_partner: \"gamma\" recipient_user: \"x\" }")), TestContext.Current.CancellationToken);
        string error = await DecodeAsync(await ReadRawFrameAsync(alpha));

        Assert.Contains("code: SENDER_MISMATCH", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_envelope_over_a_rate_limit_encoded_by_protoc_gets_RATE_LIMITED_with_the_message_id_and_a_retry_after()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Interop.RateLimits = true;
            o.Interop.UserEnvelopesPerSecond = 1;
            o.Interop.UserEnvelopeBurst = 1;
        });
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync("hello { versions: PROTOCOL_VERSION_1 }")), TestContext.Current.CancellationToken);
        await ReadRawFrameAsync(alpha);

        const string Envelope = "envelope {{ message_id: \"{0}\" sender_partner: \"alpha\" sender_user: \"alice\" recipient_partner: \"beta\" recipient_user: \"bob\" content_kind: CONTENT_KIND_TEXT ciphertext: \"x\" }}";
        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, Envelope, "0123456789abcdef"))), TestContext.Current.CancellationToken);
        await alpha.Stream.WriteAsync(Delimit(await EncodeAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, Envelope, "0123456789abcdeg"))), TestContext.Current.CancellationToken);
        string ack = await DecodeAsync(await ReadRawFrameAsync(alpha));
        string error = await DecodeAsync(await ReadRawFrameAsync(alpha));
        if (error.Contains("ack {", StringComparison.Ordinal))
        {
            (ack, error) = (error, ack); // the Ack waits for the log; the refusal may come first
        }

        Assert.Contains("message_id: \"0123456789abcdef\"", ack, StringComparison.Ordinal);
        Assert.Contains("code: RATE_LIMITED", error, StringComparison.Ordinal);
        Assert.Contains("detail: \"sender user over 1 envelopes/s (burst 1) of partner \\'alpha\\'\"", error, StringComparison.Ordinal);
        Assert.Contains("message_id: \"0123456789abcdeg\"", error, StringComparison.Ordinal);
        Assert.Matches(@"retry_after_ms: ([1-9][0-9]{0,2}|1000)\n", error);
    }

    [Fact]
    public async Task The_worked_example_in_docs_protocol_md_runs_as_written_and_prints_what_the_docs_show()
    {
        (string script, string[] expected) = WorkedExample();
        await using TestRelay relay = TestRelay.Start(_pki);
        DirectoryInfo work = Directory.CreateTempSubdirectory("relayd-worked-example-");
        try
        {
            // The layout `relayd dev --dir` writes: ca.crt and partners/<id>.crt|.key.
            string pki = Path.Combine(work.FullName, "pki");
            Directory.CreateDirectory(Path.Combine(pki, "partners"));
            File.Copy(_pki.CaPath, Path.Combine(pki, "ca.crt"));
            (string cert, string key) = _pki.WritePartner("alpha");
            File.Copy(cert, Path.Combine(pki, "partners", "alpha.crt"));
            File.Copy(key, Path.Combine(pki, "partners", "alpha.key"));
            string configured = SetVariable(SetVariable(SetVariable(script,
                "RELAY", $"127.0.0.1:{relay.Port}"), "PKI", pki), "PROTO", $"\"-I{ProtoRoot} relayd/v1/relayd.proto\"");

            ExternalProcess.Result run = await ExternalProcess.RunAsync("bash", ["-c", $"cd '{work.FullName}' && {{\n{configured}\n}}"], timeoutSeconds: 60);

            Assert.True(run.ExitCode == 0, $"the script failed ({run.ExitCode}): {run.StandardError}");
            string[] printed = run.StandardOutput.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (string line in expected)
            {
                Assert.True(printed.Contains(line), $"the docs show '{line}', the script printed:\n{run.StandardOutput}\n{run.StandardError}");
            }
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Section 9 of docs/protocol.md: its shell script, and the lines of its sample output (without "...").</summary>
    private static (string Script, string[] Expected) WorkedExample()
    {
        string docs = File.ReadAllText(Path.Combine(ExternalProcess.RepositoryRoot, "docs", "protocol.md"));
        string section = docs[docs.IndexOf("## 9. A worked example with protoc", StringComparison.Ordinal)..];
        string[] blocks = section.Split("```");
        // blocks[1] is "sh\n<script>", blocks[3] is "\n<output>" (blocks between are prose).
        Assert.StartsWith("sh\n", blocks[1], StringComparison.Ordinal);
        string script = blocks[1]["sh\n".Length..];
        string[] expected = [.. blocks[3].Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Where(l => l != "...")];
        return (script, expected);
    }

    /// <summary>Replaces the value of the script's line <c>NAME=...</c> (and its comment).</summary>
    private static string SetVariable(string script, string name, string value)
    {
        string[] lines = script.Split('\n');
        int index = Array.FindIndex(lines, l => l.StartsWith(name + "=", StringComparison.Ordinal));
        Assert.True(index >= 0, $"the worked example sets no {name}");
        lines[index] = $"{name}={value}";
        return string.Join('\n', lines);
    }
}
