using System.Text.Json;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Control;
using Relayd.Tests.Infrastructure;
using Relayd.Tests.Interop;

namespace Relayd.Tests.Support.Health;

/// <summary>
/// Partner health end to end: <c>relayd ctl health PARTNER</c> against a real relay process, HealthRequest over real
/// mutual TLS (each partner sees only its own counters), a protoc-encoded HealthRequest, and health switched off.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class HealthEndToEndTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public HealthEndToEndTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Ctl_health_counts_what_alpha_sent_and_refused_and_says_the_backlog_waits_on_beta()
    {
        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);
        await using RelayClient alpha = await relay.Relay.ConnectAsync("alpha");
        for (int i = 0; i < 3; i++)
        {
            await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta")); // beta is not connected: they wait
        }

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New("alpha", "zeta")));
        Assert.Equal(ErrorCode.UnknownRecipientPartner, refused.Code);

        JsonElement alphaHealth = (await relay.CtlJsonAsync("health", "alpha")).GetProperty("health");
        Assert.Equal("alpha", alphaHealth.GetProperty("partner").GetString());
        Assert.Equal(1, alphaHealth.GetProperty("sessions_now").GetInt32());
        Assert.Equal(3, alphaHealth.GetProperty("accepted_last_minute").GetInt64());
        Assert.Equal(3, alphaHealth.GetProperty("accepted_last_hour").GetInt64());
        JsonElement code = Assert.Single(alphaHealth.GetProperty("refused_last_minute").EnumerateArray());
        Assert.Equal("UNKNOWN_RECIPIENT_PARTNER", code.GetProperty("name").GetString());
        Assert.Equal(1, code.GetProperty("count").GetInt64());
        Assert.Equal(0, alphaHealth.GetProperty("backlog_envelopes").GetInt64());

        JsonElement betaHealth = (await relay.CtlJsonAsync("health", "beta")).GetProperty("health");
        Assert.Equal(0, betaHealth.GetProperty("sessions_now").GetInt32());
        Assert.Equal(0, betaHealth.GetProperty("accepted_last_minute").GetInt64());
        Assert.Equal(3, betaHealth.GetProperty("backlog_envelopes").GetInt64());
        Assert.StartsWith("waiting on beta: no session, 3 envelope(s) queued for it", betaHealth.GetProperty("assessment").GetString(), StringComparison.Ordinal);

        ExternalProcess.Result table = await relay.CtlAsync("health", "beta");
        Assert.Equal(0, table.ExitCode);
        Assert.Matches(@"(?m)^partner:\s+beta$", table.StandardOutput);
        Assert.Matches(@"(?m)^backlog:\s+3 envelope\(s\), the oldest waiting ", table.StandardOutput);
        Assert.Matches(@"(?m)^assessment:\s+waiting on beta: no session", table.StandardOutput);

        ExternalProcess.Result alphaTable = await relay.CtlAsync("health", "alpha");
        Assert.Matches(@"(?m)^refused:\s+UNKNOWN_RECIPIENT_PARTNER 1 last minute; UNKNOWN_RECIPIENT_PARTNER 1 last hour$", alphaTable.StandardOutput);
        Assert.Matches(@"(?m)^accepted:\s+3 last minute, 3 last hour$", alphaTable.StandardOutput);
    }

    [Fact]
    public async Task Ctl_health_of_an_unknown_partner_or_without_one_is_a_one_line_refusal()
    {
        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki);

        ExternalProcess.Result unknown = await relay.CtlAsync("health", "zeta");
        ExternalProcess.Result missing = await relay.CtlAsync("health");

        Assert.Equal(67, unknown.ExitCode); // EX_NOUSER
        Assert.Equal("relayd ctl: unknown_partner: partner 'zeta' is not approved on this relay", unknown.StandardError.Trim());
        Assert.Equal(64, missing.ExitCode); // EX_USAGE: System.CommandLine's parse error, as for every command
        Assert.Contains("PARTNER", missing.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", unknown.StandardError + missing.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HealthRequest_over_TLS_answers_each_partner_about_itself_only()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        Envelope sent = Envelopes.New("alpha", "beta");
        await alpha.SendAsync(sent).Within();
        Deliver delivered = await beta.Deliveries.ReadAsync().Within();
        // Relay time has millisecond resolution: a loopback round trip inside one millisecond is a latency of 0 µs
        // (CI saw it). Holding the ack back 5 ms makes the latency one the histogram must show.
        await Task.Delay(5, TestContext.Current.CancellationToken);
        await beta.AcknowledgeAsync(delivered);
        await alpha.Receipts.ReadAsync().Within(); // the ack was processed: the latency is recorded

        HealthReply ofAlpha = await alpha.HealthAsync().Within();
        HealthReply ofBeta = await beta.HealthAsync().Within();
        HealthReply ofGamma = await gamma.HealthAsync().Within();

        Assert.Equal("alpha", ofAlpha.PartnerId);
        Assert.Equal(1UL, ofAlpha.AcceptedLastMinute);
        Assert.Equal(0UL, ofAlpha.DeliveriesLast5Minutes);
        Assert.Equal("beta", ofBeta.PartnerId);
        Assert.Equal(0UL, ofBeta.AcceptedLastMinute);
        Assert.Equal(1UL, ofBeta.DeliveriesLast5Minutes);
        Assert.InRange(ofBeta.DeliveryLatencyMaxUs, 4_000UL, 60_000_000UL); // at least the 5 ms held, in whole ms
        Assert.Equal(0UL, ofBeta.BacklogEnvelopes);

        // gamma took no part: its reply is that of a partner with no traffic, nothing of alpha's or beta's in it.
        var idle = new HealthReply { RequestId = ofGamma.RequestId, PartnerId = "gamma", SessionsNow = 1, ConnectsLastHour = 1 };
        Assert.Equal(idle, ofGamma);
    }

    [Fact]
    public async Task A_protoc_encoded_HealthRequest_is_answered_with_a_HealthReply_that_decodes_with_protoc()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await ProtocFrames.SendAsync(alpha, "hello { versions: PROTOCOL_VERSION_1 }");
        await ProtocFrames.ReceiveAsync(alpha);

        await ProtocFrames.SendAsync(alpha, "health_request { request_id: 7 }");
        string answer = await ProtocFrames.ReceiveAsync(alpha);

        Assert.Contains("health_reply {", answer, StringComparison.Ordinal);
        Assert.Contains("request_id: 7", answer, StringComparison.Ordinal);
        Assert.Contains("partner_id: \"alpha\"", answer, StringComparison.Ordinal);
        Assert.Contains("sessions_now: 1", answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_health_off_HealthRequest_is_UNEXPECTED_FRAME_and_ctl_health_is_not_available()
    {
        await using ControlledRelay relay = await ControlledRelay.StartAsync(_pki, """
            [health]
            enabled = false
            """);
        await using RelayClient alpha = await relay.Relay.ConnectAsync("alpha");

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.HealthAsync());
        ExternalProcess.Result ctl = await relay.CtlAsync("health", "alpha");

        Assert.Equal(ErrorCode.UnexpectedFrame, refused.Code);
        Assert.Contains("partner health is off", refused.Message, StringComparison.Ordinal);
        Assert.Equal(69, ctl.ExitCode);
        Assert.Contains("not_available: partner health is off on this relay", ctl.StandardError, StringComparison.Ordinal);
        Assert.Equal(1, (await relay.CtlJsonAsync("sessions")).GetProperty("sessions").GetArrayLength()); // the session went on
    }
}
