using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Hosting.Systemd;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>The watchdog's decision: a ping while the relay makes progress, none (and a status saying why) while it is stuck.</summary>
public sealed class WatchdogTests
{
    [Fact]
    public async Task No_ping_goes_out_while_something_is_stuck_and_pings_resume_after()
    {
        using var notify = new NotifySocket();
        SystemdNotifier notifier = NotifierFor(notify.Path);
        string? stuck = null;
        var watchdog = new SystemdWatchdog(new SystemdNotifications(notifier), TimeSpan.FromSeconds(2), _ => stuck, NullLogger.Instance);

        watchdog.Tick();
        int ping = await notify.WaitForLineAsync("WATCHDOG=1");

        stuck = "a write-ahead log commit has run for 3.0 s";
        watchdog.Tick();
        watchdog.Tick();
        stuck = null;
        watchdog.Tick();
        int next = await notify.WaitForLineAsync("WATCHDOG=1", from: ping + 1);

        // Between the two pings: one status saying why, and no ping.
        IReadOnlyList<string> between = [.. notify.Received.Skip(ping + 1).Take(next - ping - 1)];
        Assert.Equal(["STATUS=stuck: a write-ahead log commit has run for 3.0 s"], between);
        Assert.Equal(TimeSpan.FromSeconds(1), watchdog.PingPeriod);
    }

    [Fact]
    public void WATCHDOG_USEC_for_another_process_is_not_ours()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), WithEnvironment("10000000", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), SystemdWatchdog.IntervalFromEnvironment));
        Assert.Equal(TimeSpan.FromSeconds(10), WithEnvironment("10000000", null, SystemdWatchdog.IntervalFromEnvironment));
        Assert.Null(WithEnvironment("10000000", "1", SystemdWatchdog.IntervalFromEnvironment));
        Assert.Null(WithEnvironment("0", null, SystemdWatchdog.IntervalFromEnvironment));
        Assert.Null(WithEnvironment("ten", null, SystemdWatchdog.IntervalFromEnvironment));
    }

    private static readonly Lock EnvironmentLock = new();

    // The notifier reads NOTIFY_SOCKET when it is created; the variable is set only for that moment.
    private static SystemdNotifier NotifierFor(string path)
    {
        lock (EnvironmentLock)
        {
            Environment.SetEnvironmentVariable("NOTIFY_SOCKET", path);
            try
            {
                return new SystemdNotifier();
            }
            finally
            {
                Environment.SetEnvironmentVariable("NOTIFY_SOCKET", null);
            }
        }
    }

    private static T WithEnvironment<T>(string? usec, string? pid, Func<T> read)
    {
        lock (EnvironmentLock)
        {
            Environment.SetEnvironmentVariable("WATCHDOG_USEC", usec);
            Environment.SetEnvironmentVariable("WATCHDOG_PID", pid);
            try
            {
                return read();
            }
            finally
            {
                Environment.SetEnvironmentVariable("WATCHDOG_USEC", null);
                Environment.SetEnvironmentVariable("WATCHDOG_PID", null);
            }
        }
    }
}
