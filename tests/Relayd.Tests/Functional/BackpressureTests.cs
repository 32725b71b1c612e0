using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>A recipient that stops reading never makes the relay's memory grow without bound.</summary>
[Collection(nameof(MemorySensitiveCollection))]
public sealed class BackpressureTests : IClassFixture<PkiFixture>
{
    private const long QueueBound = 8L * 1024 * 1024;
    private readonly TestPki _pki;

    public BackpressureTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_stalled_recipient_makes_senders_get_QUEUE_FULL_while_relay_memory_stays_under_the_queue_bound()
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

        // Offer 64 MiB, eight times the bound.
        byte[] ciphertext = Envelopes.RandomCiphertext(16 * 1024);
        int accepted = 0;
        RelayException? queueFull = null;
        for (int i = 0; i < 4096 && queueFull is null; i++)
        {
            try
            {
                await alpha.SendAsync(Envelopes.New("alpha", "beta", toUser: "user-" + (i % 16), ciphertext: ciphertext)).Within(30);
                accepted++;
            }
            catch (RelayException ex) when (ex.Code == ErrorCode.QueueFull)
            {
                queueFull = ex;
            }
        }

        long held = relay.Server.Partners.Find("beta")!.Mailbox.Shards.Sum(s => s.SlabBytes);
        long heapGrowth = GC.GetTotalMemory(forceFullCollection: true) - heapBefore;
        TestContext.Current.TestOutputHelper?.WriteLine($"accepted {accepted} x 16 KiB before QUEUE_FULL; queues hold {held / 1024} KiB; managed heap grew {heapGrowth / 1024} KiB");
        Assert.NotNull(queueFull);
        Assert.True(queueFull.RetryAfterMs > 0);
        Assert.True(held <= QueueBound, $"queues hold {held} bytes, bound {QueueBound}");
        Assert.True(heapGrowth < QueueBound + (16 * 1024 * 1024), $"managed heap grew by {heapGrowth} bytes");
        Assert.InRange(accepted, 64, (int)(QueueBound / ciphertext.Length) + 1);
    }

    [Fact]
    public async Task Other_recipients_are_unaffected_by_one_stalled_partner()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.MaxQueuedBytesPerPartner = QueueBound);
        await using RawPartnerConnection stalledBeta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await stalledBeta.SendHelloAsync();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        byte[] ciphertext = Envelopes.RandomCiphertext(64 * 1024);
        while (true)
        {
            try
            {
                await alpha.SendAsync(Envelopes.New("alpha", "beta", ciphertext: ciphertext)).Within(30);
            }
            catch (RelayException ex) when (ex.Code == ErrorCode.QueueFull)
            {
                break;
            }
        }

        Envelope toGamma = Envelopes.New("alpha", "gamma");
        await alpha.SendAsync(toGamma).Within();
        Deliver delivered = await gamma.Deliveries.ReadAsync().Within();

        Assert.Equal(toGamma, delivered.Envelope);
    }
}
