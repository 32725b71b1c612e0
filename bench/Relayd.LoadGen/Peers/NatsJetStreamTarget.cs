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
public sealed class NatsJetStreamTarget(PeerPki pki) : NatsTarget(pki, jetStream: true)
{
    private const string Stream = "LOAD";

    private NatsJSContext[] _publishers = [];

    /// <inheritdoc />
    public override string Name => "nats-jetstream";

    /// <inheritdoc />
    public override string Durability => "JetStream file store; NATS 2.9 acks without fsync";

    /// <inheritdoc />
    protected override async Task<Func<CancellationToken, Task>> SubscribeAsync(
        NatsConnection receiver, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken)
    {
        var receiving = new NatsJSContext(receiver);
        await receiving.CreateStreamAsync(
            new StreamConfig(Stream, [NatsSubjects.All]) { Storage = StreamConfigStorage.File }, cancellationToken);
        INatsJSConsumer consumer = await receiving.CreateOrderedConsumerAsync(Stream, cancellationToken: cancellationToken);
        return stopping => DeliverAsync(consumer, onDelivered, stopping);
    }

    /// <inheritdoc />
    protected override void OnSendersConnected() => _publishers = [.. Senders.Select(sender => new NatsJSContext(sender))];

    /// <inheritdoc />
    /// <remarks>Completes on the stream's PubAck; an ack carrying an error is a <see cref="LoadRefusedException"/>.</remarks>
    public override async Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload)
    {
        PubAckResponse ack;
        try
        {
            ack = await _publishers[connection].PublishAsync(Subjects[recipient], payload);
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
