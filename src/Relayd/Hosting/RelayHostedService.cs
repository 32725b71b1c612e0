using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Relayd.Transport;

namespace Relayd.Hosting;

/// <summary>Runs the relay inside the generic host, so systemd notify, SIGTERM and journald come for free.</summary>
internal sealed class RelayHostedService : IHostedService, IAsyncDisposable
{
    private readonly RelayOptions _options;
    private readonly ILogger<RelayHostedService> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private RelayServer? _server;
    private volatile Exception? _storageFailure;

    public RelayHostedService(RelayOptions options, ILogger<RelayHostedService> logger, IHostApplicationLifetime lifetime)
    {
        _options = options;
        _logger = logger;
        _lifetime = lifetime;
    }

    public RelayServer Server => _server ?? throw new InvalidOperationException("not started");

    /// <summary>Set when the write-ahead log failed (fsync rule): the process stops and must exit non-zero.</summary>
    public Exception? StorageFailure => _storageFailure;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _server = RelayServerFactory.Create(_options, _logger);
        _server.Store.Log.Failed += OnStorageFailed;
        _server.Start(RelayConfigLoader.ParseListen(_options.Listen));
        return Task.CompletedTask;
    }

    private void OnStorageFailed(Exception error)
    {
        // PostgreSQL's fsync rule: never retry, never ack what failed; stop, and let recovery keep what reached the disk.
        _storageFailure = error;
        Storage.StorageLog.LogFailed(_logger, error);
        _lifetime.StopApplication();
    }

    public Task StopAsync(CancellationToken cancellationToken) => _server?.StopAsync(cancellationToken) ?? Task.CompletedTask;

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
