using System.Text.Json;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Trace;

/// <summary>
/// A real relayd process SIGKILLed and started again on the same log: the trace of an accepted message is complete
/// (its ACCEPTED and DURABLE, re-derived from the write-ahead log where the process lost them), read with the real
/// <c>relayd ctl trace</c> over the control socket.
/// </summary>
public sealed class TraceAcrossKillTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public TraceAcrossKillTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task After_SIGKILL_and_restart_an_accepted_message_has_its_accepted_and_durable_steps_once_and_waits_for_beta()
    {
        DirectoryInfo control = Directory.CreateTempSubdirectory("relayd-trace-ctl-");
        string socket = Path.Combine(control.FullName, "control.sock");
        await using var relay = new RelaydProcess(_pki, tables: $"""
            [control]
            socket = "{socket}"
            """);
        try
        {
            await relay.StartAsync();
            Envelope first = Envelopes.New("alpha", "beta");
            Envelope second = Envelopes.New("alpha", "beta");
            await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
            {
                await alpha.SendAsync(first).Within();
                await WaitForStepsAsync(socket, first, "durable"); // on disk before the kill
                await alpha.SendAsync(second).Within(); // acked: durable in the log; its trace events may still be in memory
            }

            // 1. SIGKILL: what the trace had written survives; what was in its ring is derived from the log.
            await relay.RestartAsync(kill: true);
            foreach (Envelope sent in (Envelope[])[first, second])
            {
                JsonElement trace = await WaitForStepsAsync(socket, sent, "durable");
                AssertCompleteAndWaitingForBeta(trace);
            }

            // 2. SIGKILL and the trace's files gone (a power loss before anything reached the disk): all from the log.
            await relay.KillAsync();
            foreach (string file in Directory.EnumerateFiles(Path.Combine(relay.WalDirectory, "trace")).Where(f => f.EndsWith(".trace", StringComparison.Ordinal) || f.EndsWith(".open", StringComparison.Ordinal)))
            {
                File.Delete(file);
            }

            await relay.StartAsync();
            foreach (Envelope sent in (Envelope[])[first, second])
            {
                JsonElement trace = await WaitForStepsAsync(socket, sent, "durable");
                AssertCompleteAndWaitingForBeta(trace);
                Assert.All(trace.GetProperty("steps").EnumerateArray(), s => Assert.True(s.GetProperty("from_log").GetBoolean()));
            }

            ExternalProcess.Result text = await CtlAsync(socket, "trace", "--sender", "alpha", "--message-id", TraceTimelineTests.Hex(first.MessageId));
            Assert.Equal(0, text.ExitCode);
            TestContext.Current.TestOutputHelper?.WriteLine(text.StandardOutput); // what an admin reads
            Assert.Contains("accepted (from log)", text.StandardOutput, StringComparison.Ordinal);
            Assert.Matches(@"(?m)^accepted \d\d:\d\d:\d\d\.\d{3} \(from log\), waiting for beta: beta has had no session since the relay started", text.StandardOutput);

            ExternalProcess.Result unknown = await CtlAsync(socket, "trace", "--sender", "alpha", "--message-id", "00112233445566778899aabbccddeeff");
            Assert.Equal(66, unknown.ExitCode);
            Assert.Equal("relayd ctl: not_found: the trace has no message 00112233445566778899aabbccddeeff of 'alpha' (never seen, or older than [trace] retention_seconds)", unknown.StandardError.Trim());
            Assert.DoesNotContain("   at ", unknown.StandardError, StringComparison.Ordinal); // no stack trace
        }
        finally
        {
            control.Delete(recursive: true);
        }
    }

    private static void AssertCompleteAndWaitingForBeta(JsonElement trace)
    {
        string[] steps = [.. trace.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("step").GetString()!)];
        Assert.Equal(["received", "accepted", "durable"], steps); // each once: a derived step is dropped where its original survived
        Assert.Equal("beta", trace.GetProperty("waiting_on").GetString());
        Assert.StartsWith("siphash:", trace.GetProperty("sender_user").GetString(), StringComparison.Ordinal); // hashed from the log's record when derived
        Assert.NotEqual(0, trace.GetProperty("steps")[1].GetProperty("bytes").GetInt64());
        Assert.Contains("waiting for beta: beta has had no session since the relay started", trace.GetProperty("summary").GetString(), StringComparison.Ordinal);
    }

    private static Task<ExternalProcess.Result> CtlAsync(string socket, params string[] arguments) =>
        ExternalProcess.RunRelaydAsync(["ctl", "--socket", socket, .. arguments]);

    // Polls ctl --json trace until the step is there (the control socket comes up after the relay listens).
    private static async Task<JsonElement> WaitForStepsAsync(string socket, Envelope sent, string step)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            ExternalProcess.Result result = await CtlAsync(socket, "--json", "trace", "--sender", "alpha", "--message-id", TraceTimelineTests.Hex(sent.MessageId));
            if (result.ExitCode == 0)
            {
                JsonElement trace = JsonDocument.Parse(result.StandardOutput).RootElement.GetProperty("trace");
                if (trace.GetProperty("steps").EnumerateArray().Any(s => s.GetProperty("step").GetString() == step))
                {
                    return trace;
                }
            }

            Assert.True(DateTime.UtcNow < deadline, $"ctl trace never showed '{step}': exit {result.ExitCode}\n{result.StandardOutput}{result.StandardError}");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }
}
