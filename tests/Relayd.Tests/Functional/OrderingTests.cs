using System.Collections.Concurrent;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>Per-conversation order, no loss, no duplicates, under concurrent load.</summary>
public sealed class OrderingTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public OrderingTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Ten_thousand_envelopes_from_two_senders_to_several_users_arrive_in_conversation_order_none_lost_none_duplicated()
    {
        const int perSender = 5_000;
        const int users = 7;
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.ShardCount = 4);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        var receiving = Task.Run(() => ReceiveAsync(beta, 2 * perSender));
        await Task.WhenAll(SendAsync(alpha, perSender, users), SendAsync(gamma, perSender, users));
        List<Envelope> received = await receiving.Within(60);

        Assert.Equal(2 * perSender, received.Count);
        Assert.Equal(received.Count, received.Select(e => e.MessageId).Distinct().Count());
        foreach (IGrouping<(string, string, string), Envelope> conversation in received.GroupBy(e => (e.SenderPartner, e.SenderUser.ToStringUtf8(), e.RecipientUser.ToStringUtf8())))
        {
            long[] sequence = [.. conversation.Select(e => e.ClientTimestampMs)];
            Assert.Equal(sequence.Order(), sequence);
        }
    }

    private static async Task SendAsync(RelayClient client, int count, int users)
    {
        // Pipelined: up to 512 unacknowledged, sent in order; the sequence number rides in client_timestamp_ms.
        var inFlight = new ConcurrentQueue<Task<Ack>>();
        for (int i = 0; i < count; i++)
        {
            Envelope envelope = Envelopes.New(client.PartnerId, "beta", toUser: "user-" + (i % users), fromUser: "sender-" + (i % 3));
            envelope.ClientTimestampMs = i;
            inFlight.Enqueue(client.SendAsync(envelope));
            if (inFlight.Count >= 512 && inFlight.TryDequeue(out Task<Ack>? oldest))
            {
                await oldest.Within(30);
            }
        }

        await Task.WhenAll(inFlight).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
    }

    private static async Task<List<Envelope>> ReceiveAsync(RelayClient beta, int expected)
    {
        var received = new List<Envelope>(expected);
        await beta.ConsumeAsync(d => received.Add(d.Envelope), expected, TestContext.Current.CancellationToken);
        return received;
    }
}
