using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// What the daemon tells systemd over NOTIFY_SOCKET (a real datagram socket standing where systemd's is): STATUS and
/// EXTEND_TIMEOUT_USEC while it recovers, READY=1 once it accepts, a status line, watchdog pings at half of
/// WATCHDOG_USEC, STOPPING=1 on SIGTERM.
/// </summary>
public sealed class SystemdNotifyTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public SystemdNotifyTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task READY_comes_after_the_recovery_status_and_once_partners_can_connect_then_STOPPING_on_SIGTERM()
    {
        using var notify = new NotifySocket();
        await using var relay = new RelaydProcess(_pki);
        relay.Environment["NOTIFY_SOCKET"] = notify.Path;
        relay.Launch();

        int ready = await notify.WaitForLineAsync("READY=1");
        // Ready means ready: a partner connects and is acked at once, with no retry.
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        }

        IReadOnlyList<string> received = notify.Received;
        int recovering = await notify.WaitForAsync(d => d.Contains("STATUS=recovering the write-ahead log", StringComparison.Ordinal), "STATUS=recovering");
        Assert.True(recovering < ready, "the recovery status came after READY=1:\n" + string.Join("\n---\n", received));
        Assert.Contains("EXTEND_TIMEOUT_USEC=30000000", received[recovering].Split('\n'));
        Assert.Contains(received[ready].Split('\n'), line => line.StartsWith("STATUS=serving: ", StringComparison.Ordinal));

        // The steady-state line follows every 5 s and counts what was accepted.
        await notify.WaitForAsync(d => d.StartsWith("STATUS=serving: ", StringComparison.Ordinal) && d.Contains("of 3 partners connected", StringComparison.Ordinal), "a steady-state STATUS", from: ready + 1);

        relay.SendSigterm();
        await notify.WaitForLineAsync("STOPPING=1", from: ready);
        Assert.Equal(0, await relay.WaitForExitAsync());
    }

    [Fact]
    public async Task With_WATCHDOG_USEC_the_relay_pings_at_half_the_interval_and_says_so()
    {
        using var notify = new NotifySocket();
        await using var relay = new RelaydProcess(_pki);
        relay.Environment["NOTIFY_SOCKET"] = notify.Path;
        relay.Environment["WATCHDOG_USEC"] = "1000000";
        await relay.StartAsync();

        int first = await notify.WaitForLineAsync("WATCHDOG=1");
        int second = await notify.WaitForLineAsync("WATCHDOG=1", from: first + 1);
        await notify.WaitForLineAsync("WATCHDOG=1", from: second + 1);
        await relay.WaitForOutputAsync("systemd watchdog: WatchdogSec=1 s, pinging every 0.5 s");
    }

    [Fact]
    public async Task A_relay_whose_log_commit_hangs_is_reported_stuck_and_is_fine_again_once_it_returns()
    {
        // The commit probe the watchdog asks before each ping, on a real relay whose fdatasync is held.
        var disk = new HeldDisk();
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Storage.FileSync = disk);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        Assert.Null(relay.Server.Stuck(TimeSpan.FromMilliseconds(100)));

        disk.Hold();
        Task<Ack> ack = alpha.SendAsync(Envelopes.New("alpha", "beta"));
        string? stuck = null;
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while ((stuck = relay.Server.Stuck(TimeSpan.FromMilliseconds(100))) is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        Assert.NotNull(stuck);
        Assert.StartsWith("a write-ahead log commit has run for", stuck, StringComparison.Ordinal);
        disk.Release();
        await ack.Within();
        Assert.Null(relay.Server.Stuck(TimeSpan.FromMilliseconds(100)));
    }
}
