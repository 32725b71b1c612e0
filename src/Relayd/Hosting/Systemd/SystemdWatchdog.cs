using System.Globalization;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;

namespace Relayd.Hosting.Systemd;

/// <summary>
/// With <c>WatchdogSec=</c> in the unit, systemd sets WATCHDOG_USEC and restarts the relay when no WATCHDOG=1 arrives
/// within it. The pings go out at half that interval, and only while the relay makes progress (its accept loop runs,
/// no log commit is hung): a relay that is alive but stuck gets restarted, and recovery keeps every acked envelope.
/// </summary>
internal sealed class SystemdWatchdog
{
    private readonly SystemdNotifications _notifications;
    private readonly Func<TimeSpan, string?> _stuck;
    private readonly ILogger _logger;
    private string? _withheld;

    /// <param name="stuck">Given the longest a commit may run, null while the relay makes progress, else what is stuck.</param>
    public SystemdWatchdog(SystemdNotifications notifications, TimeSpan interval, Func<TimeSpan, string?> stuck, ILogger logger)
    {
        _notifications = notifications;
        Interval = interval;
        _stuck = stuck;
        _logger = logger;
    }

    /// <summary>WATCHDOG_USEC: how long systemd waits for a ping.</summary>
    public TimeSpan Interval { get; }

    /// <summary>How often the relay pings: half the interval, as sd_watchdog_enabled(3) advises.</summary>
    public TimeSpan PingPeriod => Interval / 2;

    /// <summary>
    /// The interval systemd asked for, from WATCHDOG_USEC; null when there is no watchdog, or WATCHDOG_PID names
    /// another process (the variables were inherited).
    /// </summary>
    public static TimeSpan? IntervalFromEnvironment()
    {
        if (!long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out long microseconds) || microseconds <= 0)
        {
            return null;
        }

        string? pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (pid is not null && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }

        return TimeSpan.FromMicroseconds(microseconds);
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        OperationsLog.WatchdogEnabled(_logger, Interval.TotalSeconds, PingPeriod.TotalSeconds);
        using var timer = new PeriodicTimer(PingPeriod);
        try
        {
            do
            {
                Tick();
            }
            while (await timer.WaitForNextTickAsync(stopping));
        }
        catch (OperationCanceledException)
        {
            // Stopping: systemd stops expecting pings once STOPPING=1 is sent.
        }
    }

    /// <summary>One ping, unless something is stuck (a commit running longer than the ping period counts).</summary>
    internal void Tick()
    {
        string? stuck = _stuck(PingPeriod);
        if (stuck is null)
        {
            if (_withheld is not null)
            {
                OperationsLog.WatchdogResumed(_logger);
                _withheld = null;
            }

            _notifications.Watchdog();
            return;
        }

        if (_withheld != stuck)
        {
            OperationsLog.WatchdogWithheld(_logger, stuck);
            _notifications.Status("stuck: " + stuck);
            _withheld = stuck;
        }
    }
}
