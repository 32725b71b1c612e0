using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Hosting.Systemd;

namespace Relayd.Hosting.Systemd;

/// <summary>
/// What relayd tells systemd (sd_notify), sent through the hosting package's <see cref="ISystemdNotifier"/>, which
/// already owns the NOTIFY_SOCKET datagram; this type only spells the messages. Every method is a no-op when the
/// process was not started with NOTIFY_SOCKET (not a Type=notify unit).
/// </summary>
internal sealed class SystemdNotifications(ISystemdNotifier notifier)
{
    public bool IsEnabled => notifier.IsEnabled;

    /// <summary>A one-line status (<c>systemctl status</c> shows it).</summary>
    public void Status(string status) => Send($"STATUS={OneLine(status)}");

    /// <summary>A status, and "give me <paramref name="extension"/> more from now" for a start or stop that takes long (a big log to replay).</summary>
    public void Progress(string status, TimeSpan extension) =>
        Send($"STATUS={OneLine(status)}\nEXTEND_TIMEOUT_USEC={Microseconds(extension)}");

    /// <summary>Started (or reloaded): recovery is done and the listener accepts.</summary>
    public void Ready(string status) => Send($"READY=1\nSTATUS={OneLine(status)}");

    /// <summary>A reload began; systemd 252 matches it to the reload job by the monotonic time.</summary>
    public void Reloading() => Send($"RELOADING=1\nMONOTONIC_USEC={MonotonicMicroseconds()}\nSTATUS=reloading the configuration");

    public void Stopping(string status) => Send($"STOPPING=1\nSTATUS={OneLine(status)}");

    public void Watchdog() => Send("WATCHDOG=1");

    /// <summary>CLOCK_MONOTONIC in microseconds: on Linux <see cref="Stopwatch"/> reads that clock.</summary>
    internal static long MonotonicMicroseconds() => (long)(Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000.0));

    private void Send(string state)
    {
        if (notifier.IsEnabled)
        {
            notifier.Notify(new ServiceState(state));
        }
    }

    private static string Microseconds(TimeSpan span) => ((long)span.TotalMicroseconds).ToString(CultureInfo.InvariantCulture);

    // A newline would start another assignment in the datagram.
    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
