using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Hosting.Systemd;
using Relayd.Security;

namespace Relayd.Hosting.Reload;

/// <summary>
/// The reload SIGHUP, <c>systemctl reload</c> and <c>relayd ctl reload</c> run: RELOADING=1 to systemd, the file read
/// and checked as <c>relayd check-config</c> checks it (the [tls] files included), then, only if every check passed,
/// the swap: server certificate and key, partner CA bundle and CRL for new connections, the approved partners and
/// their settings. Sessions stay up, but those of a partner no longer approved get GoAway. Then READY=1.
/// </summary>
/// <remarks>
/// Only [tls] and [[partners]] change at run time. A change to any other key (listen address, limits, log, media,
/// metrics, control) refuses the whole reload and names the key, so that an admin never believes a setting is in
/// force that is not: those need a restart.
/// </remarks>
internal sealed class ConfigReloader : IConfigReload, IDisposable
{
    private readonly Func<Relay?> _relay;
    private readonly SystemdNotifications _notifications;
    private readonly Func<string> _status;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private IReadOnlyDictionary<string, string> _inForce;
    private volatile ReloadOutcome? _last;

    /// <param name="configPath">The file the relay was started from; null for options not from a file (<c>relayd dev</c>).</param>
    /// <param name="inForce">The values of the file as the relay was started from it.</param>
    /// <param name="relay">The relay once it serves; null while it starts.</param>
    /// <param name="status">The steady-state status line, sent with READY=1 after a reload.</param>
    public ConfigReloader(string? configPath, IReadOnlyDictionary<string, string> inForce, Func<Relay?> relay, SystemdNotifications notifications, Func<string> status, ILogger logger)
    {
        ConfigPath = configPath;
        _inForce = inForce;
        _relay = relay;
        _notifications = notifications;
        _status = status;
        _logger = logger;
    }

    public string? ConfigPath { get; }

    public ReloadOutcome? LastReload => _last;

    /// <summary>Called after each reload with whether it was applied (the reload counter of the metrics).</summary>
    public Action<bool>? Reloaded { get; set; }

    public async Task<ReloadOutcome> ReloadAsync(string requestedBy, CancellationToken cancellationToken = default)
    {
        await _oneAtATime.WaitAsync(cancellationToken);
        try
        {
            _notifications.Reloading();
            ReloadOutcome outcome = await Task.Run(() => Reload(requestedBy), cancellationToken);
            _last = outcome;
            Reloaded?.Invoke(outcome.Applied);
            _notifications.Ready(outcome.Applied ? _status() : $"reload refused ({outcome.Summary}); running on the previous configuration");
            return outcome;
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private ReloadOutcome Reload(string requestedBy)
    {
        if (ConfigPath is null)
        {
            return Refused(requestedBy, [], "this relay was not started from a configuration file (relayd dev): nothing to reload");
        }

        if (_relay() is not { } relay)
        {
            return Refused(requestedBy, [], "the relay is still starting; reload once it is ready");
        }

        LoadedConfig loaded = RelayConfigLoader.Read(ConfigPath, checkFiles: true);
        List<ConfigError> problems = [.. loaded.Problems.Where(p => !p.IsWarning)];
        if (problems.Count == 0)
        {
            problems.AddRange(ChangesNeedingRestart(loaded));
        }

        if (problems.Count > 0)
        {
            return Refused(requestedBy, problems, problems.Count == 1 ? problems[0].ToString() : $"{problems.Count} problems in {ConfigPath}");
        }

        TlsMaterial tls;
        try
        {
            tls = TlsMaterial.Load(loaded.Options.Tls);
        }
        catch (TlsMaterialException ex)
        {
            // The files passed the check a moment ago: one changed in between (a rotation half done).
            List<ConfigError> tlsProblems = [.. ex.Problems.Select(p => new ConfigError(ConfigPath, loaded.Lines.GetValueOrDefault(p.Key), p.Key, $"{p.Path}: {p.Reason}"))];
            return Refused(requestedBy, tlsProblems, tlsProblems[0].ToString());
        }

        int[] sessionsBefore = [.. relay.Partners.Partners.Select(p => relay.Sessions.Count(s => ReferenceEquals(s.Partner, p)))];
        Routing.PartnerInfo[] before = relay.Partners.Partners;
        string changes = relay.ApplyReload(loaded.Options, tls.ServerCertificate, new PartnerCertificateValidator(tls.PartnerRoots, tls.Crl), tlsChanged: true);
        for (int i = 0; i < before.Length; i++)
        {
            if (before[i].IsRetired)
            {
                OperationsLog.PartnerRetired(_logger, before[i].Id, sessionsBefore[i]);
            }
        }

        foreach (ConfigError warning in loaded.Problems.Where(p => p.IsWarning))
        {
            RelayLog.ConfigWarning(_logger, warning.ToString());
        }

        _inForce = loaded.Values;
        OperationsLog.ReloadApplied(_logger, ConfigPath, requestedBy, changes);
        return new ReloadOutcome(DateTimeOffset.UtcNow, Applied: true, requestedBy, [], changes);
    }

    /// <summary>Every key outside [tls] and [[partners]] whose value differs from the one in force.</summary>
    private IEnumerable<ConfigError> ChangesNeedingRestart(LoadedConfig loaded)
    {
        foreach (string key in _inForce.Keys.Union(loaded.Values.Keys).Order(StringComparer.Ordinal))
        {
            if (IsReloadable(key))
            {
                continue;
            }

            string? was = _inForce.GetValueOrDefault(key);
            string? now = loaded.Values.GetValueOrDefault(key);
            if (was != now)
            {
                yield return new ConfigError(ConfigPath!, loaded.Lines.GetValueOrDefault(key), key,
                    $"cannot change on reload (in force: {was ?? "the default"}, in the file: {now ?? "the default"}); restart relayd to apply it");
            }
        }
    }

    private static bool IsReloadable(string key) =>
        key.StartsWith("tls.", StringComparison.Ordinal) || key.StartsWith("partners[", StringComparison.Ordinal);

    public void Dispose() => _oneAtATime.Dispose();

    private ReloadOutcome Refused(string requestedBy, IReadOnlyList<ConfigError> problems, string summary)
    {
        foreach (ConfigError problem in problems)
        {
            OperationsLog.ReloadProblem(_logger, problem.ToString());
        }

        OperationsLog.ReloadRefused(_logger, requestedBy, summary);
        return new ReloadOutcome(DateTimeOffset.UtcNow, Applied: false, requestedBy, problems, summary);
    }
}
