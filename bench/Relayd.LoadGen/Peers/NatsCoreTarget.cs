using NATS.Client.Core;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// Core NATS pub/sub over mutual TLS on our own nats-server: senders publish to <c>load.&lt;recipient&gt;</c>, one
/// receiving connection subscribes to <c>load.&gt;</c>. Core NATS has no acknowledgement, so a send is complete once the
/// client has taken the message into its write buffer; nothing is stored, and a message is lost if nobody reads it.
/// </summary>
public sealed class NatsCoreTarget(PeerPki pki) : NatsTarget(pki, jetStream: false)
{
    /// <inheritdoc />
    public override string Name => "nats-core";

    /// <inheritdoc />
    public override string Durability => "not durable (core pub/sub, no acks)";

    /// <inheritdoc />
    /// <remarks>Completes when the client has buffered the publish for writing: core NATS sends no acknowledgement.</remarks>
    public override Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload) =>
        Senders[connection].PublishAsync(Subjects[recipient], payload).AsTask();

    /// <inheritdoc />
    protected override async Task<Func<CancellationToken, Task>> SubscribeAsync(
        NatsConnection receiver, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken)
    {
        INatsSub<NatsMemoryOwner<byte>> subscription =
            await receiver.SubscribeCoreAsync<NatsMemoryOwner<byte>>(NatsSubjects.All, cancellationToken: cancellationToken);
        // The PONG comes after the server has processed SUB, so no message published from here on can miss it.
        await receiver.PingAsync(cancellationToken);
        return stopping => DeliverAsync(subscription, onDelivered, stopping);
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
