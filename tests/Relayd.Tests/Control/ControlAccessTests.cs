using Relayd.Admission;
using Relayd.Hosting.Control;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Tests.Control;

/// <summary>Who may use the control socket (SO_PEERCRED's uid/gid, and /proc's supplementary groups), and the suspension rule.</summary>
public sealed class ControlAccessTests
{
    [Theory]
    [InlineData(0u, 0u)]     // root
    [InlineData(998u, 998u)] // the relay's own user
    [InlineData(1000u, 120u)] // primary group is the configured one
    public void Root_the_relays_own_user_and_the_configured_group_may_connect(uint uid, uint gid)
    {
        var access = new ControlAccess(ownUid: 998, "relayd-admin", groupId: 120, supplementaryGroups: _ => []);

        Assert.Null(access.Refusal(new PeerCredentials(1234, uid, gid)));
    }

    [Fact]
    public void A_member_through_a_supplementary_group_may_connect()
    {
        var access = new ControlAccess(ownUid: 998, "relayd-admin", groupId: 120, supplementaryGroups: pid => pid == 77 ? [27, 120] : []);

        Assert.Null(access.Refusal(new PeerCredentials(77, 1000, 1000)));
        Assert.NotNull(access.Refusal(new PeerCredentials(78, 1000, 1000)));
    }

    [Fact]
    public void Anyone_else_is_refused_with_a_reason_naming_the_uid_and_who_may()
    {
        var access = new ControlAccess(ownUid: 998, groupName: null, groupId: null, supplementaryGroups: _ => [120]);

        string? refusal = access.Refusal(new PeerCredentials(4321, 65534, 65534));

        Assert.NotNull(refusal);
        Assert.Contains("uid 65534", refusal, StringComparison.Ordinal);
        Assert.Contains("pid 4321", refusal, StringComparison.Ordinal);
        Assert.Contains("only root and uid 998", refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void The_group_id_is_read_from_the_group_file()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file, ["root:x:0:", "relayd-admin:x:120:alice,bob", "broken-line"]);

            Assert.Equal(120u, UnixAccounts.GroupId("relayd-admin", file));
            Assert.Null(UnixAccounts.GroupId("relayd", file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void The_suspension_rule_refuses_a_suspended_sender_and_a_suspended_recipient_with_PARTNER_SUSPENDED()
    {
        var limits = new RelayLimits();
        var alpha = new PartnerInfo(new PartnerOptions { Id = "alpha" }, limits);
        var beta = new PartnerInfo(new PartnerOptions { Id = "beta" }, limits);
        var rule = new SuspensionRule();

        Assert.True(Check(rule, alpha, beta, out _));

        Assert.True(beta.Suspend());
        Assert.False(beta.Suspend());
        Assert.False(Check(rule, alpha, beta, out AdmissionRefusal toSuspended));
        Assert.False(Check(rule, beta, alpha, out AdmissionRefusal fromSuspended));
        Assert.Equal(ErrorCode.PartnerSuspended, toSuspended.Code);
        Assert.Equal(ErrorCode.PartnerSuspended, fromSuspended.Code);
        Assert.Contains("'beta'", toSuspended.Detail, StringComparison.Ordinal);

        Assert.True(beta.Resume());
        Assert.True(Check(rule, alpha, beta, out _));
    }

    private static bool Check(SuspensionRule rule, PartnerInfo sender, PartnerInfo recipient, out AdmissionRefusal refusal) =>
        rule.Check(new AdmissionRequest { Subject = AdmissionSubject.Envelope, Sender = sender, Recipient = recipient }, out refusal);
}
