using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>The log lines of systemd integration and configuration reloads (80x), ids from <see cref="EventIds"/>.</summary>
internal static partial class OperationsLog
{
    [LoggerMessage(EventIds.ReloadApplied, LogLevel.Information, "Configuration reloaded from {ConfigPath} ({RequestedBy}): {Changes}")]
    public static partial void ReloadApplied(ILogger logger, string configPath, string requestedBy, string changes);

    [LoggerMessage(EventIds.ReloadRefused, LogLevel.Error, "Configuration reload ({RequestedBy}) refused, the running configuration stays: {Reason}")]
    public static partial void ReloadRefused(ILogger logger, string requestedBy, string reason);

    [LoggerMessage(EventIds.ReloadProblem, LogLevel.Error, "Configuration reload: {Problem}")]
    public static partial void ReloadProblem(ILogger logger, string problem);

    [LoggerMessage(EventIds.PartnerRetired, LogLevel.Warning, "Partner {PartnerId} is no longer approved (configuration reloaded): GoAway PARTNER_NOT_APPROVED sent to {SessionCount} sessions")]
    public static partial void PartnerRetired(ILogger logger, string partnerId, int sessionCount);

    [LoggerMessage(EventIds.WatchdogEnabled, LogLevel.Information, "systemd watchdog: WatchdogSec={IntervalSeconds} s, pinging every {PingSeconds} s while the accept loop and the log's commits make progress")]
    public static partial void WatchdogEnabled(ILogger logger, double intervalSeconds, double pingSeconds);

    [LoggerMessage(EventIds.WatchdogWithheld, LogLevel.Critical, "systemd watchdog pings withheld: {Reason}; systemd restarts the relay unless it recovers")]
    public static partial void WatchdogWithheld(ILogger logger, string reason);

    [LoggerMessage(EventIds.WatchdogResumed, LogLevel.Warning, "systemd watchdog pings resumed: the relay is making progress again")]
    public static partial void WatchdogResumed(ILogger logger);
}
