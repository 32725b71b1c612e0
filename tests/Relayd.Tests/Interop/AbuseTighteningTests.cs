using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Repeated abuse reports against one sender user tighten its rate limit when <c>[interop] tighten_reported_senders</c>
/// is on: the abuse store's reports and the rate limiter, wired together by the relay (Relay.TightenReportedSenders).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AbuseTighteningTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public AbuseTighteningTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task The_reports_named_by_tighten_after_reports_hold_the_reported_user_to_the_tightened_rate_and_nobody_else()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Interop.RateLimits = true;
            o.Interop.TightenReportedSenders = true;
            o.Interop.TightenAfterReports = 2;
            o.Interop.TightenedUserEnvelopesPerSecond = 1;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        // One report is one user's word: bob still sends a burst (5 > the tightened burst of 1).
        await alpha.ReportAbuseAsync(InteropFlows.Report("alpha", "alice", "beta", "bob")).Within();
        for (int i = 0; i < 5; i++)
        {
            await Envelopes.AcceptedAsync(beta, Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bob"));
        }

        // A second reporter: bob is held to 1 envelope/s, so of three sent back to back at most one passes.
        await alpha.ReportAbuseAsync(InteropFlows.Report("alpha", "anna", "beta", "bob")).Within();
        var refusals = new List<RelayException>();
        for (int i = 0; i < 3; i++)
        {
            try
            {
                await beta.SendAsync(Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bob")).Within();
            }
            catch (RelayException ex)
            {
                refusals.Add(ex);
            }
        }

        Assert.InRange(refusals.Count, 2, 3);
        Assert.All(refusals, r => Assert.Equal(ErrorCode.RateLimited, r.Code));
        Assert.All(refusals, r => Assert.InRange(r.RetryAfterMs, 1u, 1000u));

        // Another user of the same partner, and bob of another partner, are not touched.
        for (int i = 0; i < 5; i++)
        {
            await Envelopes.AcceptedAsync(beta, Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "ben"));
        }

        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        for (int i = 0; i < 5; i++)
        {
            await Envelopes.AcceptedAsync(gamma, Envelopes.New("gamma", "alpha", toUser: "alice", fromUser: "bob"));
        }
    }

    [Fact]
    public async Task Without_tighten_reported_senders_reports_change_no_rate()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Interop.RateLimits = true;
            o.Interop.TightenAfterReports = 1;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        await alpha.ReportAbuseAsync(InteropFlows.Report("alpha", "alice", "beta", "bob")).Within();
        await alpha.ReportAbuseAsync(InteropFlows.Report("alpha", "anna", "beta", "bob")).Within();
        for (int i = 0; i < 10; i++)
        {
            await Envelopes.AcceptedAsync(beta, Envelopes.New("beta", "alpha", toUser: "alice", fromUser: "bob"));
        }
    }
}
