using NATS.Client.Core;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// What the NATS targets share: their own nats-server over mutual TLS, one receiving connection, one sending
/// connection per load connection, and the teardown. The subclass chooses core pub/sub or JetStream.
/// </summary>
public abstract class NatsTarget : ILoadTarget
{
    private readonly PeerPki _pki;
    private readonly bool _jetStream;
    private readonly CancellationTokenSource _stopping = new();
    private NatsServer? _server;
    private NatsConnection? _receiver;
    private Task _receiving = Task.CompletedTask;
    private bool _disposed;

    /// <summary>Creates the target; nothing starts before <see cref="StartAsync"/>.</summary>
    protected NatsTarget(PeerPki pki, bool jetStream)
    {
        ArgumentNullException.ThrowIfNull(pki);
        _pki = pki;
        _jetStream = jetStream;
    }

    /// <inheritdoc />
    public abstract string Name { get; }

    /// <inheritdoc />
    public abstract string Durability { get; }

    /// <inheritdoc />
    public int? ServerPid => _server?.Pid;

    /// <summary>The sending connections, one per load connection.</summary>
    protected NatsConnection[] Senders { get; private set; } = [];

    /// <summary>The subject of each recipient user.</summary>
    protected string[] Subjects { get; private set; } = [];

    /// <inheritdoc />
    public async Task StartAsync(Workload workload, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workload);
        ArgumentNullException.ThrowIfNull(onDelivered);
        try
        {
            _server = await NatsServer.StartAsync(_pki, _jetStream, cancellationToken);
            Subjects = NatsSubjects.ForUsers(workload.Users);
            _receiver = await _server.ConnectAsync("loadgen-receiver", cancellationToken);
            Func<CancellationToken, Task> deliver = await SubscribeAsync(_receiver, onDelivered, cancellationToken);
            _receiving = ReceiveLoop.Start(Name, deliver, _stopping.Token);

            Senders = new NatsConnection[workload.Connections];
            for (int i = 0; i < Senders.Length; i++)
            {
                Senders[i] = await _server.ConnectAsync($"loadgen-sender-{i}", cancellationToken);
            }

            OnSendersConnected();
        }
        catch
        {
            // Whoever called may not dispose a target that failed to start; its server must not outlive it.
            await DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    public abstract Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload);

    /// <summary>Closes the connections, stops nats-server and deletes its directory (with any stream files).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stopping.CancelAsync();
        await _receiving;
        await AsyncDisposables.DisposeAllAsync([.. Senders, _receiver, _server]);
        _stopping.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Sets up the receiving side on <paramref name="receiver"/> so that no message published from now on is missed;
    /// returns the loop that hands each message to <paramref name="onDelivered"/> until it is stopped.
    /// </summary>
    protected abstract Task<Func<CancellationToken, Task>> SubscribeAsync(NatsConnection receiver, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken);

    /// <summary>Called once <see cref="Senders"/> are connected.</summary>
    protected virtual void OnSendersConnected()
    {
    }
}
