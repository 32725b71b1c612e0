using System.Text.Json;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Control;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Abuse reports (docs/protocol.md, "Abuse reports") over real TLS: each message id checked against what the relay
/// carried, the report acknowledged once durable, the notice stored and forwarded to the reported partner (live, or
/// when it connects, after a SIGKILL too), listed by <c>relayd ctl abuse</c>.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AbuseReportTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public AbuseReportTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_report_reaches_a_connected_reported_partner_with_the_carried_id_verified_and_others_flagged()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope fromBob = await InteropFlows.CarriedAsync(beta, alpha, fromUser: "bob", toUser: "alice");
        Envelope toCarol = await InteropFlows.CarriedAsync(beta, alpha, fromUser: "bob", toUser: "carol"); // carried, but between other users
        ByteString neverCarried = InteropFlows.NewId();

        AbuseReport report = InteropFlows.Report("alpha", "alice", "beta", "bob", fromBob.MessageId, toCarol.MessageId, neverCarried);
        AbuseReportAck ack = await alpha.ReportAbuseAsync(report).Within();
        AbuseNotice notice = await InteropFlows.NextNoticeAsync(beta);

        Assert.Equal(report.ReportId, ack.ReportId);
        Assert.Equal(1u, ack.VerifiedMessages);
        Assert.Equal(2u, ack.UnverifiedMessages);
        Assert.Equal(report, notice.Report); // note and disclosed content reach the provider that moderates bob
        Assert.Equal([fromBob.MessageId], notice.VerifiedMessageIds);
        Assert.Equal([toCarol.MessageId, neverCarried], notice.UnverifiedMessageIds);
        Assert.Equal(ack.AcceptedAtMs, notice.AcceptedAtMs);

        // A resend of the same report id gets the first ack, and no second notice.
        AbuseReportAck again = await alpha.ReportAbuseAsync(report).Within();
        Assert.Equal(ack, again);
        await beta.AcknowledgeAbuseNoticeAsync(notice);
        Assert.True(await Envelopes.StaysEmpty(beta.AbuseNotices, 300));
    }

    [Fact]
    public async Task Each_accepted_report_is_counted_against_its_reported_user_and_raises_ReportAccepted_once()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        var raised = new System.Collections.Concurrent.ConcurrentQueue<(string Partner, string User)>();
        relay.Server.Abuse!.ReportAccepted += (partner, user) => raised.Enqueue((partner.Id, System.Text.Encoding.UTF8.GetString(user.Span)));

        AbuseReport first = InteropFlows.Report("alpha", "alice", "beta", "bob");
        await alpha.ReportAbuseAsync(first).Within();
        await alpha.ReportAbuseAsync(first).Within(); // a resend: not a second report
        await alpha.ReportAbuseAsync(InteropFlows.Report("alpha", "anna", "beta", "bob")).Within();
        await alpha.ReportAbuseAsync(InteropFlows.Report("alpha", "alice", "gamma", "bob")).Within(); // another partner's bob

        Assert.Equal(2, relay.Server.Abuse.ReportsAgainst("beta", "bob"u8, TimeSpan.FromMinutes(5)));
        Assert.Equal(1, relay.Server.Abuse.ReportsAgainst("gamma", "bob"u8, TimeSpan.FromMinutes(5)));
        Assert.Equal(0, relay.Server.Abuse.ReportsAgainst("beta", "carl"u8, TimeSpan.FromMinutes(5)));
        Assert.Equal([("beta", "bob"), ("beta", "bob"), ("gamma", "bob")], raised.ToArray());
    }

    [Fact]
    public async Task A_message_the_reporter_sent_itself_is_not_verified_against_the_other_user()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        Envelope fromAlice = await InteropFlows.CarriedAsync(alpha, beta, fromUser: "alice", toUser: "bob"); // the other direction

        AbuseReportAck ack = await alpha.ReportAbuseAsync(InteropFlows.Report("alpha", "alice", "beta", "bob", fromAlice.MessageId)).Within();

        Assert.Equal(0u, ack.VerifiedMessages);
        Assert.Equal(1u, ack.UnverifiedMessages);
    }

    [Fact]
    public async Task A_report_is_refused_with_the_code_and_field_named_and_its_report_id()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        AbuseReport forged = InteropFlows.Report("gamma", "alice", "beta", "bob");
        AbuseReport longNote = InteropFlows.Report("alpha", "alice", "beta", "bob");
        longNote.Note = new string('x', 4097);
        AbuseReport noReason = InteropFlows.Report("alpha", "alice", "beta", "bob");
        noReason.Reason = AbuseReason.Unspecified;
        AbuseReport bigDisclosure = InteropFlows.Report("alpha", "alice", "beta", "bob");
        bigDisclosure.DisclosedContent = ByteString.CopyFrom(new byte[64 * 1024 + 1]);
        AbuseReport tooManyIds = InteropFlows.Report("alpha", "alice", "beta", "bob", [.. Enumerable.Range(0, 101).Select(_ => InteropFlows.NewId())]);
        AbuseReport unknownPartner = InteropFlows.Report("alpha", "alice", "omega", "bob");

        RelayException senderMismatch = await Envelopes.RefusedAsync(() => alpha.ReportAbuseAsync(forged).Within());
        RelayException note = await Envelopes.RefusedAsync(() => alpha.ReportAbuseAsync(longNote).Within());
        RelayException reason = await Envelopes.RefusedAsync(() => alpha.ReportAbuseAsync(noReason).Within());
        RelayException disclosed = await Envelopes.RefusedAsync(() => alpha.ReportAbuseAsync(bigDisclosure).Within());
        RelayException ids = await Envelopes.RefusedAsync(() => alpha.ReportAbuseAsync(tooManyIds).Within());
        RelayException partner = await Envelopes.RefusedAsync(() => alpha.ReportAbuseAsync(unknownPartner).Within());

        Assert.Equal(ErrorCode.SenderMismatch, senderMismatch.Code);
        Assert.Equal(ErrorCode.InvalidRequest, note.Code);
        Assert.Contains("note", note.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.InvalidRequest, reason.Code);
        Assert.Contains("reason", reason.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.InvalidRequest, disclosed.Code);
        Assert.Contains("disclosed_content", disclosed.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.InvalidRequest, ids.Code);
        Assert.Contains("message_ids", ids.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.PartnerNotApproved, partner.Code);
        Assert.Empty(relay.Server.Abuse!.Recent(10)); // nothing refused was kept
        Assert.DoesNotContain(relay.Logs, line => line.Contains("private note", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_report_made_while_the_reported_partner_is_offline_survives_SIGKILL_is_listed_and_reaches_it_when_it_connects()
    {
        await using ControlledRelay controlled = await ControlledRelay.StartAsync(_pki);
        RelaydProcess relay = controlled.Relay;
        AbuseReport report;
        AbuseReportAck ack;
        Envelope fromBob;
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            await using (RelayClient beta = await relay.ConnectAsync("beta"))
            {
                fromBob = await InteropFlows.CarriedAsync(beta, alpha, fromUser: "bob", toUser: "alice");
            }

            // beta is offline at the relay too: a report made before the relay saw its session close would go to
            // that dying session instead of being held.
            await relay.WaitForOutputAsync("of partner beta closed");
            report = InteropFlows.Report("alpha", "alice", "beta", "bob", fromBob.MessageId, InteropFlows.NewId());
            ack = await alpha.ReportAbuseAsync(report).Within();
            Assert.Equal(1u, ack.VerifiedMessages);
            Assert.Equal(1u, ack.UnverifiedMessages);
        }

        await relay.RestartAsync(kill: true); // the ack said durable: the report and its notice survive
        await relay.WaitForOutputAsync("Control socket listening");

        JsonElement listed = Assert.Single((await controlled.CtlJsonAsync("abuse")).GetProperty("abuse_reports").EnumerateArray());
        Assert.Equal("alpha", listed.GetProperty("reporter_partner").GetString());
        Assert.Equal("beta", listed.GetProperty("reported_partner").GetString());
        Assert.Equal("harassment", listed.GetProperty("reason").GetString());
        Assert.Equal(1, listed.GetProperty("verified").GetInt32());
        Assert.Equal(1, listed.GetProperty("unverified").GetInt32());
        Assert.Matches("^[0-9a-f]{16}$", listed.GetProperty("reported_user").GetString());
        Assert.False(listed.GetProperty("delivered_to_reported_partner").GetBoolean());
        ExternalProcess.Result table = await controlled.CtlAsync("abuse");
        Assert.Contains("harassment", table.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("private note", table.StandardOutput + (await controlled.CtlAsync("--json", "abuse")).StandardOutput, StringComparison.Ordinal);

        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            AbuseNotice notice = await InteropFlows.NextNoticeAsync(beta);
            Assert.Equal(report, notice.Report);
            Assert.Equal([fromBob.MessageId], notice.VerifiedMessageIds);
            await beta.AcknowledgeAbuseNoticeAsync(notice);
            await WaitUntilAsync(async () => (await controlled.CtlJsonAsync("abuse")).GetProperty("abuse_reports")[0].GetProperty("delivered_to_reported_partner").GetBoolean());
        }

        // Acknowledged: not sent again on the next connection; a resend of the report still gets its first ack.
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            await using RelayClient alpha = await relay.ConnectAsync("alpha");
            Assert.Equal(ack, await alpha.ReportAbuseAsync(report).Within());
            Assert.True(await Envelopes.StaysEmpty(beta.AbuseNotices, 500));
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, int seconds = 10)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold in time");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
