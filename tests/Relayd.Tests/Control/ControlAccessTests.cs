using Relayd.Admission;
using Relayd.Hosting.Control;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

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
    public async Task The_peers_supplementary_groups_come_from_the_kernel_at_connect()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "needs root, to connect as another user with chosen groups");
        Assert.SkipUnless(File.Exists("/usr/bin/setpriv") && File.Exists("/usr/bin/python3"), "needs setpriv and python3");
        if (!OperatingSystem.IsLinux())
        {
            return; // SO_PEERGROUPS is Linux's
        }

        DirectoryInfo directory = Directory.CreateTempSubdirectory("relayd-peergroups-");
        try
        {
            // A real peer: another process, uid 65534 with supplementary groups 4242 and 4243, connects.
            string path = Path.Combine(directory.FullName, "s.sock");
            using var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
            listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            listener.Listen();
            File.SetUnixFileMode(path, (UnixFileMode)0x1FF);
            File.SetUnixFileMode(directory.FullName, (UnixFileMode)0x1FF);
            Task<ExternalProcess.Result> client = ExternalProcess.RunAsync("setpriv",
                ["--reuid=65534", "--regid=65534", "--groups=4242,4243", "/usr/bin/python3", "-c", $"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{path}'); s.recv(1)"], null, timeoutSeconds: 30);
            Task<System.Net.Sockets.Socket> accepted = listener.AcceptAsync(TestContext.Current.CancellationToken).AsTask();
            if (await Task.WhenAny(accepted, client) != accepted)
            {
                ExternalProcess.Result failed = await client;
                throw new Xunit.Sdk.XunitException($"the client ended before connecting: exit {failed.ExitCode}: {failed.StandardError}");
            }

            using System.Net.Sockets.Socket peer = await accepted;

            PeerCredentials credentials = PeerCredentials.Read(peer);
            peer.Send([1]);
            Assert.Equal(0, (await client).ExitCode);

            Assert.Equal(65534u, credentials.Uid);
            Assert.Equal([4242u, 4243u], credentials.Groups.Order());
            var access = new ControlAccess(ownUid: 998, "relayd-admin", groupId: 4243, supplementaryGroups: _ => []);
            Assert.Null(access.Refusal(credentials)); // /proc hidden (ProtectProc=invisible): the kernel's list still counts
        }
        finally
        {
            directory.Delete(recursive: true);
        }
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
