using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Relayd.Transport;

namespace Relayd.Hosting;

/// <summary>Runs the relay inside the generic host, so systemd notify, SIGTERM and journald come for free.</summary>
internal sealed class RelayHostedService : IHostedService, IAsyncDisposable
{
    private readonly RelayOptions _options;
    private readonly ILogger<RelayHostedService> _logger;
    private RelayServer? _server;

    public RelayHostedService(RelayOptions options, ILogger<RelayHostedService> logger)
    {
        _options = options;
        _logger = logger;
    }

    public RelayServer Server => _server ?? throw new InvalidOperationException("not started");

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _server = RelayServerFactory.Create(_options, _logger);
        _server.Start(RelayConfigLoader.ParseListen(_options.Listen));
        return Task.CompletedTask;
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
