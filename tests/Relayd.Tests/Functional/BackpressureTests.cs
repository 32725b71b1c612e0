using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>A recipient that stops reading never makes the relay's memory grow without bound: its backlog waits in the log.</summary>
[Collection(nameof(MemorySensitiveCollection))]
public sealed class BackpressureTests : IClassFixture<PkiFixture>
{
    private const long QueueBound = 8L * 1024 * 1024;
    private readonly TestPki _pki;

    public BackpressureTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_stalled_recipient_leaves_its_backlog_in_the_log_while_relay_memory_stays_under_the_queue_bound()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Limits.MaxQueuedBytesPerPartner = QueueBound;
            o.Limits.ShardCount = 2;
        });
        // beta says Hello and then never reads: the relay's writes to it stall once the socket buffers are full.
        await using RawPartnerConnection stalledBeta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await stalledBeta.SendHelloAsync();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        GC.Collect();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);

        // Offer 64 MiB, eight times the memory bound: every envelope is accepted (it is durable in the log).
        const int Count = 4096;
        byte[] ciphertext = Envelopes.RandomCiphertext(16 * 1024);
        var sends = new List<Task<Ack>>();
        for (int i = 0; i < Count; i++)
        {
            sends.Add(alpha.SendAsync(Envelopes.New("alpha", "beta", toUser: "user-" + (i % 16), ciphertext: ciphertext)));
            if (sends.Count % 256 == 0)
            {
                await Task.WhenAll(sends).Within(30);
            }
        }

        await Task.WhenAll(sends).Within(30);
        ShardQueue[] shards = relay.Server.Partners.Find("beta")!.Mailbox.Shards;
        long held = shards.Sum(s => s.SlabBytes);
        int inMemory = shards.Sum(s => s.Count);
        int inLogOnly = shards.Sum(s => s.SpilledCount);
        long heapGrowth = GC.GetTotalMemory(forceFullCollection: true) - heapBefore;
        TestContext.Current.TestOutputHelper?.WriteLine($"acked {Count} x 16 KiB; {inMemory} in memory ({held / 1024} KiB of slabs), {inLogOnly} in the log only; managed heap grew {heapGrowth / 1024} KiB");
        Assert.Equal(Count, inMemory + inLogOnly);
        Assert.True(inLogOnly >= Count / 2, $"only {inLogOnly} envelopes were left in the log");
        Assert.True(held <= QueueBound, $"queues hold {held} bytes, bound {QueueBound}");
        Assert.True(heapGrowth < QueueBound + (16 * 1024 * 1024), $"managed heap grew by {heapGrowth} bytes");
    }

    [Fact]
    public async Task Other_recipients_are_unaffected_by_one_stalled_partner()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.MaxQueuedBytesPerPartner = QueueBound);
        await using RawPartnerConnection stalledBeta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await stalledBeta.SendHelloAsync();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");

        // Four times beta's memory bound, so its backlog is mostly in the log.
        byte[] ciphertext = Envelopes.RandomCiphertext(64 * 1024);
        await Task.WhenAll(Enumerable.Range(0, 512).Select(_ => alpha.SendAsync(Envelopes.New("alpha", "beta", ciphertext: ciphertext)))).Within(60);
        Assert.Contains(relay.Server.Partners.Find("beta")!.Mailbox.Shards, s => s.IsSpilled);

        Envelope toGamma = Envelopes.New("alpha", "gamma");
        await alpha.SendAsync(toGamma).Within();
        Deliver delivered = await gamma.Deliveries.ReadAsync().Within();

        Assert.Equal(toGamma, delivered.Envelope);
    }
}
