using System.Globalization;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Systemd;

/// <summary>
/// The Debian package as an admin gets it: installed with dpkg in a real systemd, started as relayd.service
/// (Type=notify, the hardened sandbox, the NativeAOT binary), relaying envelopes between partners outside the
/// container, brought back by Restart=on-failure after SIGKILL without losing an acknowledged envelope, and logging
/// to the journal.
/// </summary>
/// <remarks>No test timeouts: every wait here (commands in the container, connects, deliveries) has its own deadline.</remarks>
[Collection(nameof(SystemdCollection))]
public sealed partial class PackagedRelayTests(SystemdContainer container)
{
    private const double MaxExposure = 2.0;

    [Fact]
    public async Task The_installed_unit_is_active_as_the_relayd_user_under_a_sandbox_with_an_exposure_of_at_most_2()
    {
        container.SkipUnlessAvailable();

        Assert.Equal("active", await container.ShowAsync("ActiveState"));
        Assert.Equal("notify", await container.ShowAsync("Type"));
        // The NativeAOT binary runs where a JIT could not (no writable executable memory) and without capabilities.
        Assert.Equal("yes", await container.ShowAsync("MemoryDenyWriteExecute"));
        int pid = await container.MainPidAsync();
        string status = await container.RequireAsync("cat", $"/proc/{pid}/status");
        string relaydUid = (await container.RequireAsync("id", "-u", "relayd")).Trim();
        Assert.Matches($@"(?m)^Uid:\s+{relaydUid}\s", status);
        Assert.Matches(@"(?m)^CapEff:\s+0+$", status);

        string security = await container.RequireAsync("systemd-analyze", "security", "relayd.service", "--no-pager");
        Match exposure = ExposureLine().Match(security);
        Assert.True(exposure.Success, $"no 'Overall exposure level' line in:\n{security}");
        double level = double.Parse(exposure.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(level <= MaxExposure, $"exposure {level} is above {MaxExposure}:\n{security}");

        // The version has one source: the package's upstream part is what the binary says it is.
        string version = (await container.RequireAsync("relayd", "--version")).Trim();
        string upstream = container.PackageVersion[..container.PackageVersion.LastIndexOf('-')];
        Assert.True(version == upstream || version.StartsWith(upstream + "+", StringComparison.Ordinal),
            $"relayd --version printed '{version}', the package is {container.PackageVersion}");
    }

    [Fact]
    public async Task Envelopes_sent_from_outside_the_container_are_acked_and_delivered()
    {
        container.SkipUnlessAvailable();
        const int Count = 20;

        await using RelayClient alpha = await container.ConnectAsync("alpha", receipts: false);
        await using RelayClient beta = await container.ConnectAsync("beta", receipts: false);
        var sent = new List<Envelope>();
        for (int i = 0; i < Count; i++)
        {
            Envelope envelope = Envelopes.New("alpha", "beta");
            await Envelopes.AcceptedAsync(alpha, envelope);
            sent.Add(envelope);
        }

        HashSet<ByteString> arrived = await SystemdContainer.ReceiveAsync(beta, sent, seconds: 30);

        Assert.Equal(Count, sent.Count(e => arrived.Contains(e.MessageId)));
    }

    [Fact]
    public async Task After_kill_9_of_the_main_process_Restart_on_failure_brings_it_back_and_no_acked_envelope_is_lost()
    {
        container.SkipUnlessAvailable();
        const int Count = 50;
        int restartsBefore = int.Parse(await container.ShowAsync("NRestarts"), CultureInfo.InvariantCulture);
        int pidBefore = await container.MainPidAsync();

        // Beta is away: every acked envelope waits in the relay, where only the write-ahead log can keep it. Its users
        // opted in before it went (the relay refuses envelopes between users who did not).
        await container.OptInAsync("beta");
        var acked = new List<Envelope>();
        await using (RelayClient alpha = await container.ConnectAsync("alpha", receipts: false))
        {
            for (int i = 0; i < Count; i++)
            {
                Envelope envelope = Envelopes.New("alpha", "beta");
                await Envelopes.AcceptedAsync(alpha, envelope);
                acked.Add(envelope);
            }
        }

        await container.RequireAsync("kill", "-9", pidBefore.ToString(CultureInfo.InvariantCulture));
        int pidAfter = await container.WaitForActiveAsync(notPid: pidBefore);

        Assert.NotEqual(pidBefore, pidAfter);
        // systemd restarted it (not dpkg, not the test): its restart counter moved.
        int restartsAfter = int.Parse(await container.ShowAsync("NRestarts"), CultureInfo.InvariantCulture);
        Assert.True(restartsAfter > restartsBefore, $"NRestarts stayed at {restartsAfter}");
        await using RelayClient beta = await container.ConnectAsync("beta", receipts: false);
        HashSet<ByteString> arrived = await SystemdContainer.ReceiveAsync(beta, acked, seconds: 60);
        List<Envelope> lost = acked.Where(e => !arrived.Contains(e.MessageId)).ToList();
        Assert.True(lost.Count == 0, $"{lost.Count} of {Count} acknowledged envelopes did not arrive after the restart");
    }

    [Fact]
    public async Task The_journal_has_the_relays_entries_under_its_unit()
    {
        container.SkipUnlessAvailable();

        IReadOnlyList<IReadOnlyDictionary<string, string>> entries = await container.JournalAsync();

        string listening = $"listening on 127.0.0.1:{container.Port}";
        Assert.Contains(entries, e =>
            e.GetValueOrDefault("_SYSTEMD_UNIT") == "relayd.service"
            && e.GetValueOrDefault("SYSLOG_IDENTIFIER") == "relayd"
            && e.GetValueOrDefault("MESSAGE", "").Contains(listening, StringComparison.Ordinal));
    }

    [GeneratedRegex(@"Overall exposure level for relayd\.service: (\d+(?:\.\d+)?)")]
    private static partial Regex ExposureLine();
}
