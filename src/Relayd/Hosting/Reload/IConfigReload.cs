namespace Relayd.Hosting.Reload;

/// <summary>
/// Re-reads the relay's configuration file, validates all of it, and applies it only when valid (SIGHUP,
/// <c>systemctl reload</c> and <c>relayd ctl reload</c> all come here). A config that fails validation is not applied:
/// the relay keeps running on the one it has, and the outcome lists every problem with its key and line.
/// </summary>
internal interface IConfigReload
{
    /// <summary>The configuration file reloads read (absolute path); null when the options did not come from a file (<c>relayd dev</c>).</summary>
    string? ConfigPath { get; }

    /// <summary>The last reload's outcome; null before the first.</summary>
    ReloadOutcome? LastReload { get; }

    /// <summary>Reloads now (one at a time: a reload requested during another waits for it). Never throws for a bad config.</summary>
    /// <param name="requestedBy">Who asked, for the log: <c>SIGHUP</c>, or <c>ctl uid=0 pid=123</c>.</param>
    Task<ReloadOutcome> ReloadAsync(string requestedBy, CancellationToken cancellationToken = default);
}

/// <summary>What one reload did.</summary>
/// <param name="At">When it finished.</param>
/// <param name="Applied">True when the new configuration is in force; false when it was refused (the old one keeps running).</param>
/// <param name="RequestedBy">Who asked (see <see cref="IConfigReload.ReloadAsync"/>).</param>
/// <param name="Problems">Why it was refused: every error with its key and line; empty when applied.</param>
/// <param name="Summary">One line: what changed ("partners +gamma -beta; certificate rotated") or why it was refused.</param>
internal sealed record ReloadOutcome(DateTimeOffset At, bool Applied, string RequestedBy, IReadOnlyList<ConfigError> Problems, string Summary);
