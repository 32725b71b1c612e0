using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;
using static Relayd.Tests.Interop.ConsentUsers;

namespace Relayd.Tests.Interop;

/// <summary>
/// An independent peer opts users in: the ConsentUpdate example of docs/protocol.md ("Opt-in"), encoded by protoc and
/// sent over <c>openssl s_client</c>, run as written against a real relay; the ConsentAck decodes with protoc, and
/// the consent is in force for envelopes afterwards.
/// </summary>
public sealed class ConsentProtocInteropTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ConsentProtocInteropTests(PkiFixture fixture) => _pki = fixture.Pki;

    private static string ProtoRoot => Path.Combine(ExternalProcess.RepositoryRoot, "src", "Relayd.Protocol", "Protos");

    [Fact]
    public async Task The_ConsentUpdate_example_in_docs_protocol_md_gets_a_ConsentAck_and_puts_the_grants_in_force()
    {
        (string script, string[] expected) = DocsExample();
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Interop.RequireOptIn = true);
        DirectoryInfo work = Directory.CreateTempSubdirectory("relayd-consent-example-");
        try
        {
            string pki = Path.Combine(work.FullName, "pki");
            Directory.CreateDirectory(Path.Combine(pki, "partners"));
            File.Copy(_pki.CaPath, Path.Combine(pki, "ca.crt"));
            (string cert, string key) = _pki.WritePartner("alpha");
            File.Copy(cert, Path.Combine(pki, "partners", "alpha.crt"));
            File.Copy(key, Path.Combine(pki, "partners", "alpha.key"));
            string configured = $"RELAY=127.0.0.1:{relay.Port}\nPKI={pki}\nPROTO=\"-I{ProtoRoot} relayd/v1/relayd.proto\"\n{script}";

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

        // In force: alice with everyone, bert with beta only.
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        await GrantAsync(beta, "bob");
        await GrantAsync(gamma, "carol");
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(beta, Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bob")));
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(gamma, Envelopes.New("gamma", "alpha", toUser: "alice", fromUser: "carol")));
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(beta, Envelopes.New("beta", "alpha", toUser: "bert", fromUser: "bob")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(gamma, Envelopes.New("gamma", "alpha", toUser: "bert", fromUser: "carol")));
    }

    /// <summary>
    /// The helpers of section 9's script (everything before its first frame block) followed by the Opt-in section's
    /// script, and the lines of the Opt-in section's sample output.
    /// </summary>
    private static (string Script, string[] Expected) DocsExample()
    {
        string docs = File.ReadAllText(Path.Combine(ExternalProcess.RepositoryRoot, "docs", "protocol.md"));
        string worked = docs[docs.IndexOf("## 9. A worked example with protoc", StringComparison.Ordinal)..].Split("```")[1]["sh\n".Length..];
        string[] workedLines = worked.Split('\n');
        string helpers = string.Join('\n', workedLines.Skip(3).TakeWhile(l => l != "{")); // after RELAY, PKI and PROTO

        int start = docs.IndexOf("### Opt-in (ConsentUpdate)", StringComparison.Ordinal);
        string section = docs[start..docs.IndexOf("\n### ", start + 10, StringComparison.Ordinal)];
        string[] blocks = section.Split("```");
        Assert.StartsWith("sh\n", blocks[1], StringComparison.Ordinal);
        string[] expected = [.. blocks[3].Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
        return (helpers + "\n" + blocks[1]["sh\n".Length..], expected);
    }
}
