using NATS.Client.Core;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// Core NATS pub/sub over mutual TLS on our own nats-server: senders publish to <c>load.&lt;recipient&gt;</c>, one
/// receiving connection subscribes to <c>load.&gt;</c>. Core NATS has no acknowledgement, so a send is complete once the
/// client has taken the message into its write buffer; nothing is stored, and a message is lost if nobody reads it.
/// </summary>
public sealed class NatsCoreTarget : ILoadTarget
{
    private readonly PeerPki _pki;
    private readonly CancellationTokenSource _stopping = new();
    private NatsServer? _server;
    private NatsConnection? _receiver;
    private NatsConnection[] _senders = [];
    private string[] _subjects = [];
    private Task _receiving = Task.CompletedTask;
    private bool _disposed;

    /// <summary>Creates the target; nothing starts before <see cref="StartAsync"/>.</summary>
    public NatsCoreTarget(PeerPki pki)
    {
        ArgumentNullException.ThrowIfNull(pki);
        _pki = pki;
    }

    /// <inheritdoc />
    public string Name => "nats-core";

    /// <inheritdoc />
    public string Durability => "not durable (core pub/sub, no acks)";

    /// <inheritdoc />
    public int? ServerPid => _server?.Pid;

    /// <inheritdoc />
    public async Task StartAsync(Workload workload, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workload);
        ArgumentNullException.ThrowIfNull(onDelivered);
        try
        {
            _server = await NatsServer.StartAsync(_pki, jetStream: false, cancellationToken);
            _subjects = NatsSubjects.ForUsers(workload.Users);

            _receiver = await _server.ConnectAsync("loadgen-receiver", cancellationToken);
            INatsSub<NatsMemoryOwner<byte>> subscription =
                await _receiver.SubscribeCoreAsync<NatsMemoryOwner<byte>>(NatsSubjects.All, cancellationToken: cancellationToken);
            // The PONG comes after the server has processed SUB, so no message published from here on can miss it.
            await _receiver.PingAsync(cancellationToken);
            _receiving = ReceiveLoop.Start(Name, stopping => DeliverAsync(subscription, onDelivered, stopping), _stopping.Token);

            _senders = new NatsConnection[workload.Connections];
            for (int i = 0; i < _senders.Length; i++)
            {
                _senders[i] = await _server.ConnectAsync($"loadgen-sender-{i}", cancellationToken);
            }
        }
        catch
        {
            // Whoever called may not dispose a target that failed to start; its server must not outlive it.
            await DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    /// <remarks>Completes when the client has buffered the publish for writing: core NATS sends no acknowledgement.</remarks>
    public Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload) =>
        _senders[connection].PublishAsync(_subjects[recipient], payload).AsTask();

    /// <summary>Closes the connections, stops nats-server and deletes its directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await _stopping.CancelAsync();
        await _receiving;
        await AsyncDisposables.DisposeAllAsync([.. _senders, _receiver, _server]);

        _stopping.Dispose();
    }

    private static async Task DeliverAsync(
        INatsSub<NatsMemoryOwner<byte>> subscription, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken stopping)
    {
        await using (subscription)
        {
            while (await subscription.Msgs.WaitToReadAsync(stopping))
            {
                while (subscription.Msgs.TryRead(out NatsMsg<NatsMemoryOwner<byte>> message))
                {
                    // The payload is in a pooled buffer: hand it on, then return it to the pool.
                    using NatsMemoryOwner<byte> data = message.Data;
                    onDelivered(data.Span);
                }
            }
        }
    }
}
