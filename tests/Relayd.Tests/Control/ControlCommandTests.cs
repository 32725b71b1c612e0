using System.Diagnostics;
using System.Text.Json;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Control;

/// <summary>
/// <c>relayd ctl</c> against a real relay process: the built client (tables and <c>--json</c>) and the socket's JSON
/// lines directly; suspend, resume and drain seen from real partner connections.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ControlCommandTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ControlCommandTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Status_partners_sessions_and_wal_stats_answer_as_tables_and_as_JSON()
    {
        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);
        await using RelayClient alpha = await relay.Relay.ConnectAsync("alpha");
        await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta")); // beta is not connected: it stays queued

        JsonElement status = (await relay.CtlJsonAsync("status")).GetProperty("status");
        Assert.False(string.IsNullOrEmpty(status.GetProperty("version").GetString()));
        Assert.Equal(relay.Relay.Pid, status.GetProperty("pid").GetInt32());
        Assert.Equal(1, status.GetProperty("sessions").GetInt32());
        Assert.Equal(1, status.GetProperty("backlog").GetInt64());
        Assert.Equal(3, status.GetProperty("partners_approved").GetInt32());
        Assert.False(status.GetProperty("draining").GetBoolean());
        Assert.True(status.GetProperty("reload_available").GetBoolean());
        Assert.True(File.Exists(status.GetProperty("config_file").GetString()), "status names the config file reloads read");
        Assert.False(status.TryGetProperty("last_reload", out _), "no reload yet");
        Assert.True(status.GetProperty("log_bytes").GetInt64() > 0);

        JsonElement[] partners = [.. (await relay.CtlJsonAsync("partners")).GetProperty("partners").EnumerateArray()];
        JsonElement alphaRow = partners.Single(p => p.GetProperty("id").GetString() == "alpha");
        JsonElement betaRow = partners.Single(p => p.GetProperty("id").GetString() == "beta");
        Assert.Equal(1, alphaRow.GetProperty("sessions").GetInt32());
        Assert.Equal(1, alphaRow.GetProperty("envelopes_in").GetInt64());
        Assert.Equal(0, betaRow.GetProperty("sessions").GetInt32());
        Assert.Equal(1, betaRow.GetProperty("backlog_memory").GetInt64());
        Assert.False(betaRow.GetProperty("suspended").GetBoolean());

        JsonElement session = Assert.Single((await relay.CtlJsonAsync("sessions")).GetProperty("sessions").EnumerateArray());
        Assert.Equal("alpha", session.GetProperty("partner").GetString());
        Assert.Contains("127.0.0.1", session.GetProperty("remote").GetString(), StringComparison.Ordinal);
        Assert.True(session.GetProperty("bytes_in").GetInt64() > 0);
        Assert.True(session.GetProperty("bytes_out").GetInt64() > 0);
        Assert.InRange(session.GetProperty("connected_at").GetDateTimeOffset(), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow);

        JsonElement wal = (await relay.CtlJsonAsync("wal", "stats")).GetProperty("wal");
        Assert.Equal(relay.Relay.WalDirectory, wal.GetProperty("directory").GetString());
        Assert.True(wal.GetProperty("segments").GetInt32() >= 1);

        ExternalProcess.Result table = await relay.CtlAsync("status");
        Assert.Equal(0, table.ExitCode);
        Assert.Matches(@"(?m)^draining:\s+no$", table.StandardOutput);
        Assert.Matches(@"(?m)^reload:\s+none since start$", table.StandardOutput);
        Assert.Matches(@"(?m)^backlog:\s+1 envelope", table.StandardOutput);

        ExternalProcess.Result partnerTable = await relay.CtlAsync("partners");
        Assert.Equal(0, partnerTable.ExitCode);
        Assert.Matches(@"(?m)^PARTNER\s+SESSIONS\s+IN\s+OUT\s+BACKLOG", partnerTable.StandardOutput);
        Assert.Matches(@"(?m)^alpha\s+1\s+1\s+0\s+0\s+0\s+no$", partnerTable.StandardOutput);
        Assert.Matches(@"(?m)^beta\s+0\s+0\s+0\s+1\s+0\s+no$", partnerTable.StandardOutput);

        ExternalProcess.Result sessionTable = await relay.CtlAsync("sessions");
        Assert.Equal(0, sessionTable.ExitCode);
        Assert.Matches(@"(?m)^\d+\s+alpha\s+127\.0\.0\.1:\d+\s", sessionTable.StandardOutput);
    }

    [Fact]
    public async Task The_socket_answers_JSON_lines_in_turn_and_a_bad_request_gets_a_typed_error()
    {
        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);

        List<JsonElement> answers = await relay.RawAsync(
            """{"command":"status"}""",
            "this is not json",
            """{"partner":"alpha"}""",
            """{"command":"explode"}""",
            """{"command":"suspend"}""",
            """{"command":"suspend","partner":"nobody"}""",
            """{"command":"reload"}""",
            """{"command":"partners"}""");

        Assert.True(answers[0].GetProperty("ok").GetBoolean());
        Assert.Equal(["malformed_request", "malformed_request", "unknown_command", "missing_argument", "unknown_partner"],
            answers[1..6].Select(a => a.GetProperty("error").GetProperty("code").GetString()));
        Assert.All(answers[1..6], a => Assert.False(a.GetProperty("ok").GetBoolean()));
        Assert.True(answers[6].GetProperty("ok").GetBoolean(), answers[6].ToString());
        Assert.True(answers[6].GetProperty("reload").GetProperty("applied").GetBoolean());
        Assert.StartsWith("ctl uid=0 pid=", answers[6].GetProperty("reload").GetProperty("requested_by").GetString(), StringComparison.Ordinal);
        Assert.True(answers[7].GetProperty("ok").GetBoolean());
        await relay.Relay.WaitForOutputAsync("Reload requested by ctl uid=0 pid=");
        JsonElement lastReload = (await relay.CtlJsonAsync("status")).GetProperty("status").GetProperty("last_reload");
        Assert.True(lastReload.GetProperty("applied").GetBoolean());

        // A request beyond the bound is refused before it is read to its end, and the connection closes.
        List<JsonElement> tooLarge = await relay.RawAsync(new string(' ', 100_000) + """{"command":"status"}""");
        Assert.Equal("request_too_large", tooLarge[0].GetProperty("error").GetProperty("code").GetString());

        ExternalProcess.Result unknownPartner = await relay.CtlAsync("suspend", "nobody");
        string[] refusal = CliAssert.Refusal(unknownPartner, expectedExitCode: 67);
        Assert.Equal("relayd ctl: unknown_partner: partner 'nobody' is not approved on this relay", refusal[0]);
    }

    [Fact]
    public async Task A_missing_socket_is_one_line_naming_it_and_a_killed_relays_socket_is_replaced_and_a_stopped_relay_removes_it()
    {
        string missing = Path.Combine(Path.GetTempPath(), "relayd-ctl-missing-" + Guid.NewGuid().ToString("N"), "control.sock");
        ExternalProcess.Result notRunning = await ExternalProcess.RunRelaydAsync("ctl", "--socket", missing, "status");
        string[] lines = CliAssert.Refusal(notRunning, expectedExitCode: 69);
        Assert.Equal($"relayd ctl: cannot connect to {missing}: no such file (is relayd running?)", lines[0]);

        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);
        await relay.Relay.KillAsync();
        Assert.True(File.Exists(relay.SocketPath), "SIGKILL leaves the socket file behind");
        ExternalProcess.Result refused = await relay.CtlAsync("status");
        Assert.Equal($"relayd ctl: cannot connect to {relay.SocketPath}: connection refused (is relayd running?)", CliAssert.Refusal(refused, expectedExitCode: 69)[0]);

        await relay.Relay.StartAsync();
        await relay.Relay.WaitForOutputAsync("Control socket listening");
        Assert.Equal(relay.Relay.Pid, (await relay.CtlJsonAsync("status")).GetProperty("status").GetProperty("pid").GetInt32());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(relay.SocketPath));

        Assert.Equal(0, await relay.Relay.TerminateAsync());
        Assert.False(File.Exists(relay.SocketPath), "a relay that stops removes its socket");
    }

    [Fact]
    public async Task Suspend_closes_the_partners_sessions_with_GoAway_refuses_it_both_ways_and_resume_delivers_what_was_queued()
    {
        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);
        await using RelayClient alpha = await relay.Relay.ConnectAsync("alpha");
        Envelope queued = Envelopes.New("alpha", "beta");
        await Envelopes.AcceptedAsync(alpha, queued);

        // beta takes the envelope but does not acknowledge it before it is suspended.
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Relay.Port, _pki.Partner("beta"), _pki.Ca);
        await beta.SendHelloAsync();
        Assert.NotNull((await beta.ReadFrameAsync())?.Welcome);
        Assert.Equal(queued.MessageId, (await beta.ReadFrameAsync())?.Deliver?.Envelope.MessageId);

        ExternalProcess.Result suspend = await relay.CtlAsync("suspend", "beta");
        Assert.True(suspend.ExitCode == 0, suspend.StandardOutput + suspend.StandardError);
        Assert.Contains("partner 'beta' suspended: 1 session(s) sent GoAway PARTNER_SUSPENDED", suspend.StandardOutput, StringComparison.Ordinal);
        List<Frame> untilClosed = await beta.ReadUntilClosedAsync(timeoutSeconds: 30);
        Assert.Equal(ErrorCode.PartnerSuspended, Assert.Single(untilClosed, f => f.GoAway is not null).GoAway.Code);
        await relay.Relay.WaitForOutputAsync("Partner 'beta' suspended by ctl uid=0 pid=");

        RelayException toSuspended = await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New("alpha", "beta")));
        Assert.Equal(ErrorCode.PartnerSuspended, toSuspended.Code);

        await using RawPartnerConnection again = await RawPartnerConnection.ConnectAsync(relay.Relay.Port, _pki.Partner("beta"), _pki.Ca);
        Error refusal = (await again.ReadFrameAsync())?.Error ?? throw new Xunit.Sdk.XunitException("no Error for a suspended partner's new connection");
        Assert.Equal(ErrorCode.PartnerSuspended, refusal.Code);
        Assert.True(refusal.Fatal);

        JsonElement betaRow = (await relay.CtlJsonAsync("partners")).GetProperty("partners").EnumerateArray().Single(p => p.GetProperty("id").GetString() == "beta");
        Assert.True(betaRow.GetProperty("suspended").GetBoolean());
        Assert.Equal(1, betaRow.GetProperty("backlog_memory").GetInt64());

        ExternalProcess.Result resume = await relay.CtlAsync("resume", "beta");
        Assert.True(resume.ExitCode == 0, resume.StandardOutput + resume.StandardError);
        await relay.Relay.WaitForOutputAsync("Partner 'beta' resumed by ctl uid=0 pid=");

        await using RelayClient resumed = await relay.Relay.ConnectAsync("beta");
        Deliver redelivered = await resumed.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
        Assert.Equal(queued.MessageId, redelivered.Envelope.MessageId);
        Envelope after = Envelopes.New("alpha", "beta");
        await Envelopes.AcceptedAsync(alpha, after);
        Deliver delivered = await resumed.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
        Assert.Equal(after.MessageId, delivered.Envelope.MessageId);
    }

    [Fact]
    public async Task Drain_refuses_new_envelopes_and_sessions_with_DRAINING_and_lets_deliveries_finish()
    {
        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);
        await using RelayClient alpha = await relay.Relay.ConnectAsync("alpha");
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Relay.Port, _pki.Partner("beta"), _pki.Ca);
        await beta.SendHelloAsync();
        Assert.NotNull((await beta.ReadFrameAsync())?.Welcome);
        Envelope inFlight = Envelopes.New("alpha", "beta");
        await Envelopes.AcceptedAsync(alpha, inFlight);
        Frame? first = await beta.ReadFrameAsync();
        Deliver deliver = first?.Deliver ?? throw new Xunit.Sdk.XunitException($"beta got no Deliver but {first}");

        ExternalProcess.Result drain = await relay.CtlAsync("drain");
        Assert.True(drain.ExitCode == 0, drain.StandardOutput + drain.StandardError);
        Assert.StartsWith("draining:", drain.StandardOutput, StringComparison.Ordinal);
        await relay.Relay.WaitForOutputAsync("Draining (lame duck) by ctl uid=0 pid=");

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New("alpha", "beta")));
        Assert.Equal(ErrorCode.Draining, refused.Code);
        Assert.True(refused.RetryAfterMs > 0, "DRAINING comes with a retry-after");
        using (var blob = new Relayd.LoadGen.Media.BlobStream(64 * 1024, seed: 3))
        {
            RelayException mediaRefused = await Assert.ThrowsAsync<RelayException>(() => alpha.SendMediaAsync(MediaBlobs.Open("alpha", "beta", blob), blob).Within(30));
            Assert.Equal(ErrorCode.Draining, mediaRefused.Code);
        }

        await using RawPartnerConnection gamma = await RawPartnerConnection.ConnectAsync(relay.Relay.Port, _pki.Partner("gamma"), _pki.Ca);
        Error sessionRefusal = (await gamma.ReadFrameAsync())?.Error ?? throw new Xunit.Sdk.XunitException("no Error for a new session while draining");
        Assert.Equal(ErrorCode.Draining, sessionRefusal.Code);
        Assert.True(sessionRefusal.Fatal);
        Assert.True(sessionRefusal.RetryAfterMs > 0);

        JsonElement status = (await relay.CtlJsonAsync("status")).GetProperty("status");
        Assert.True(status.GetProperty("draining").GetBoolean());
        Assert.Equal(1, status.GetProperty("backlog").GetInt64());

        // Deliveries and their acks go on: beta's DeliveryAck settles the envelope and alpha gets its receipt.
        var ack = new DeliveryAck();
        ack.DeliveryIds.Add(deliver.DeliveryId);
        await beta.SendAsync(new Frame { DeliveryAck = ack });
        Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
        Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
        Assert.Contains(inFlight.MessageId, receipt.MessageIds);
        JsonElement drained = await relay.WaitForAsync("status", r => r.GetProperty("status").GetProperty("backlog").GetInt64() == 0);
        Assert.Equal(0, drained.GetProperty("status").GetProperty("backlog").GetInt64());
        Assert.Matches(@"(?m)^draining:\s+yes$", (await relay.CtlAsync("status")).StandardOutput);
    }

    [Fact]
    public async Task A_user_who_is_not_root_nor_relayds_user_nor_in_its_group_is_refused_by_SO_PEERCRED_with_a_typed_error()
    {
        Assert.SkipUnless(TmpfsMount.RunningAsRoot, "needs root, to run the client as another uid");
        string? runAs = await FindRunAsAsync();
        Assert.SkipWhen(runAs is null, "neither setpriv nor runuser can run a command as uid 65534 here");

        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);

        // Widen the socket to everyone: the peer-credential check must hold on its own, not only the file mode.
        File.SetUnixFileMode(Path.GetDirectoryName(relay.SocketPath)!, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(relay.SocketPath, (UnixFileMode)0b110_110_110);
        string dotnet = Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";
        string[] client = [dotnet, Path.Combine(AppContext.BaseDirectory, "relayd.dll"), "ctl", "--socket", relay.SocketPath, "status"];
        ExternalProcess.Result result = runAs == "setpriv"
            ? await ExternalProcess.RunAsync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", .. client], timeoutSeconds: 120)
            : await ExternalProcess.RunAsync("runuser", ["-u", "nobody", "--", .. client], timeoutSeconds: 120);

        string[] refusal = CliAssert.Refusal(result, expectedExitCode: 77);
        Assert.StartsWith("relayd ctl: permission_denied: uid 65534 (gid 65534, pid ", refusal[0], StringComparison.Ordinal);
        Assert.EndsWith("may not use the control socket: only root and uid 0 (relayd's own user) may", refusal[0], StringComparison.Ordinal);
        await relay.Relay.WaitForOutputAsync("Control socket refused uid 65534 gid 65534");
    }

    /// <summary>setpriv or runuser, whichever can run a program as uid 65534 here; null when neither.</summary>
    private static async Task<string?> FindRunAsAsync()
    {
        foreach ((string tool, string[] arguments) in new[]
        {
            ("setpriv", new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "id", "-u" }),
            ("runuser", new[] { "-u", "nobody", "--", "id", "-u" }),
        })
        {
            try
            {
                ExternalProcess.Result probe = await ExternalProcess.RunAsync(tool, arguments, timeoutSeconds: 30);
                if (probe.ExitCode == 0 && probe.StandardOutput.Trim() == "65534")
                {
                    return tool;
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                // Not installed.
            }
        }

        return null;
    }
}
