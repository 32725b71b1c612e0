using System.Globalization;
using NATS.Client.Core;
using NATS.Client.JetStream;
using NATS.Client.JetStream.Models;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// NATS JetStream over mutual TLS on our own nats-server: a file-stored stream "LOAD" on <c>load.&gt;</c>; a send is a
/// JetStream publish that completes on the server's PubAck; the receiver is an ordered consumer (ephemeral, flow
/// controlled, no per-message acks) reading the stream from its start. nats-server 2.9 acknowledges once the message
/// is written to the store, before any fsync.
/// </summary>
public sealed class NatsJetStreamTarget : ILoadTarget
{
    private const string Stream = "LOAD";

    private readonly PeerPki _pki;
    private readonly CancellationTokenSource _stopping = new();
    private NatsServer? _server;
    private NatsConnection? _receiver;
    private NatsConnection[] _senders = [];
    private NatsJSContext[] _publishers = [];
    private string[] _subjects = [];
    private Task _receiving = Task.CompletedTask;
    private bool _disposed;

    /// <summary>Creates the target; nothing starts before <see cref="StartAsync"/>.</summary>
    public NatsJetStreamTarget(PeerPki pki)
    {
        ArgumentNullException.ThrowIfNull(pki);
        _pki = pki;
    }

    /// <inheritdoc />
    public string Name => "nats-jetstream";

    /// <inheritdoc />
    public string Durability => "JetStream file store; NATS 2.9 acks without fsync";

    /// <inheritdoc />
    public int? ServerPid => _server?.Pid;

    /// <inheritdoc />
    public async Task StartAsync(Workload workload, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workload);
        ArgumentNullException.ThrowIfNull(onDelivered);
        try
        {
            _server = await NatsServer.StartAsync(_pki, jetStream: true, cancellationToken);
            _subjects = NatsSubjects.ForUsers(workload.Users);

            _receiver = await _server.ConnectAsync("loadgen-receiver", cancellationToken);
            var receiving = new NatsJSContext(_receiver);
            await receiving.CreateStreamAsync(
                new StreamConfig(Stream, [NatsSubjects.All]) { Storage = StreamConfigStorage.File }, cancellationToken);
            INatsJSConsumer consumer = await receiving.CreateOrderedConsumerAsync(Stream, cancellationToken: cancellationToken);
            _receiving = ReceiveLoop.Start(Name, stopping => DeliverAsync(consumer, onDelivered, stopping), _stopping.Token);

            _senders = new NatsConnection[workload.Connections];
            _publishers = new NatsJSContext[workload.Connections];
            for (int i = 0; i < _senders.Length; i++)
            {
                _senders[i] = await _server.ConnectAsync($"loadgen-sender-{i}", cancellationToken);
                _publishers[i] = new NatsJSContext(_senders[i]);
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
    /// <remarks>Completes on the stream's PubAck; an ack carrying an error is a <see cref="LoadRefusedException"/>.</remarks>
    public async Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload)
    {
        PubAckResponse ack;
        try
        {
            ack = await _publishers[connection].PublishAsync(_subjects[recipient], payload);
        }
        catch (NatsJSApiException e)
        {
            throw Refused(e.Error);
        }

        if (ack.Error is { } error)
        {
            throw Refused(error);
        }
    }

    /// <summary>Closes the connections, stops nats-server and deletes its directory with the stream's files.</summary>
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

    // JetStream's err_code names the exact reason; the HTTP-like code only its class (400, 503, ...).
    private static LoadRefusedException Refused(ApiError error)
    {
        string code = error.ErrCode.ToString(CultureInfo.InvariantCulture);
        return new LoadRefusedException(code, $"JetStream refused the message: {error.Description} (code {error.Code}, err_code {code})");
    }

    private static async Task DeliverAsync(INatsJSConsumer consumer, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken stopping)
    {
        await foreach (INatsJSMsg<NatsMemoryOwner<byte>> message in consumer.ConsumeAsync<NatsMemoryOwner<byte>>(cancellationToken: stopping))
        {
            // The payload is in a pooled buffer: hand it on, then return it to the pool.
            using NatsMemoryOwner<byte> data = message.Data;
            onDelivered(data.Span);
        }
    }
}
