using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Hosting.Control;
using Relayd.Hosting.Reload;
using Relayd.Hosting.Systemd;

namespace Relayd.Hosting;

/// <summary>
/// Runs the relay inside the generic host (SIGTERM, logging), and tells systemd how it goes: STATUS and
/// EXTEND_TIMEOUT_USEC while the log is replayed, READY=1 once the listener accepts, a status line every few seconds,
/// watchdog pings while the relay makes progress, STOPPING=1 on drain.
/// </summary>
internal sealed class RelayHostedService : IHostedService, IAsyncDisposable
{
    // Each progress line asks systemd for this much more time: a replay that stops reporting is killed at most this late.
    private static readonly TimeSpan RecoveryExtension = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StatusPeriod = TimeSpan.FromSeconds(5);

    private readonly RelayOptions _options;
    private readonly ILogger<RelayHostedService> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly SystemdNotifications _systemd;
    private readonly IServiceProvider? _services;
    private readonly CancellationTokenSource _stopping = new();
    private Relay? _relay;
    private volatile Relay? _serving;
    private StatusLine? _statusLine;
    private Task _loops = Task.CompletedTask;
    private volatile Exception? _storageFailure;
    private ControlServer? _control;

    /// <param name="services">Where the control socket finds the <see cref="IConfigReload"/> at start (it depends on this service, so it cannot be a constructor argument).</param>
    public RelayHostedService(RelayOptions options, ILogger<RelayHostedService> logger, IHostApplicationLifetime lifetime, SystemdNotifications systemd, IServiceProvider? services = null)
    {
        _options = options;
        _logger = logger;
        _lifetime = lifetime;
        _systemd = systemd;
        _services = services;
    }

    public Relay Relay => _relay ?? throw new InvalidOperationException("not started");

    /// <summary>The relay's metrics once it is created; null before.</summary>
    public Diagnostics.RelayMetrics? Metrics => _relay?.Metrics;

    /// <summary>The relay once it accepts connections; null before (a reload waits for it).</summary>
    public Relay? Serving => _serving;

    /// <summary>Set when the write-ahead log failed (fsync rule): the process stops and must exit non-zero.</summary>
    public Exception? StorageFailure => _storageFailure;

    /// <summary>The status line systemd shows; what a reload reports with its READY=1.</summary>
    public string StatusNow() => _statusLine?.Next() ?? "starting";

    /// <summary>
    /// Does everything that can refuse a start: loads the [tls] files, recovers the write-ahead log, binds the listen
    /// port. Called before the host starts, so that a refusal is one line from the caller and not the host's
    /// "Hosting failed to start" log with the stack trace in it.
    /// </summary>
    /// <exception cref="Security.TlsMaterialException">A [tls] file cannot be used.</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The listen port is in use or cannot be bound.</exception>
    /// <exception cref="IOException">The write-ahead log cannot be opened (e.g. another relay has it).</exception>
    public void Open()
    {
        _systemd.Progress("recovering the write-ahead log", RecoveryExtension);
        _relay = RelayServerFactory.Create(_options, _logger);
        _relay.RecoveryProgressed = progress => _systemd.Progress(progress.ToString(), RecoveryExtension);
        _relay.Open();
        _relay.Store.Failed += OnStorageFailed;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_relay is null)
        {
            Open();
        }

        await _relay!.StartAsync(cancellationToken);
        _control ??= ControlServer.Create(_options, _relay, _services?.GetService<IConfigReload>(), _logger);
        _control.Start();
        _statusLine = new StatusLine(_relay);
        _serving = _relay;
        _systemd.Ready(_statusLine.Next());
        List<Task> loops = [StatusLoopAsync(_stopping.Token)];
        if (_systemd.IsEnabled && SystemdWatchdog.IntervalFromEnvironment() is { } interval)
        {
            loops.Add(new SystemdWatchdog(_systemd, interval, _relay.Stuck, _logger).RunAsync(_stopping.Token));
        }

        _loops = Task.WhenAll(loops);
    }

    private async Task StatusLoopAsync(CancellationToken stopping)
    {
        if (!_systemd.IsEnabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(StatusPeriod);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                _systemd.Status(StatusNow());
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private void OnStorageFailed(Exception error)
    {
        // PostgreSQL's fsync rule: never retry, never ack what failed; stop, and let recovery keep what reached the disk.
        _storageFailure = error;
        StorageLog.LogFailed(_logger, error);
        _lifetime.StopApplication();
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _serving = null;
        _systemd.Stopping($"stopping: GoAway to {_relay?.Sessions.Count ?? 0} sessions, draining");
        await _stopping.CancelAsync();
        await _loops;
        if (_control is not null)
        {
            await _control.StopAsync(); // before the relay: no command runs against a stopping relay
        }

        if (_relay is not null)
        {
            await _relay.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_control is not null)
        {
            await _control.DisposeAsync();
        }

        if (_relay is not null)
        {
            await _relay.DisposeAsync();
        }

        _statusLine?.Dispose();
        _stopping.Dispose();
    }
}
