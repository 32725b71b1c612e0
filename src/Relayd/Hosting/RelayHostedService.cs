using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Hosting.Control;
using Relayd.Hosting.Reload;

namespace Relayd.Hosting;

/// <summary>Runs the relay inside the generic host, so systemd notify, SIGTERM and journald come for free.</summary>
internal sealed class RelayHostedService : IHostedService, IAsyncDisposable
{
    private readonly RelayOptions _options;
    private readonly ILogger<RelayHostedService> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly IConfigReload? _reload;
    private Relay? _relay;
    private ControlServer? _control;
    private volatile Exception? _storageFailure;

    public RelayHostedService(RelayOptions options, ILogger<RelayHostedService> logger, IHostApplicationLifetime lifetime, IConfigReload? reload = null)
    {
        _options = options;
        _logger = logger;
        _lifetime = lifetime;
        _reload = reload;
    }

    public Relay Relay => _relay ?? throw new InvalidOperationException("not started");

    /// <summary>Set when the write-ahead log failed (fsync rule): the process stops and must exit non-zero.</summary>
    public Exception? StorageFailure => _storageFailure;

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
        _relay = RelayServerFactory.Create(_options, _logger);
        _relay.Open();
        _relay.Store.Failed += OnStorageFailed;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_relay is null)
        {
            Open();
        }

        Task started = _relay!.StartAsync(cancellationToken);
        _control ??= ControlServer.Create(_options, _relay, _reload, _logger);
        _control.Start();
        return started;
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
    }
}
