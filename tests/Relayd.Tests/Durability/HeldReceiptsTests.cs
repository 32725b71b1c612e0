using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Durability;

/// <summary>
/// Receipts for a sender that is away when its messages are delivered are held for it, and the log keeps them held:
/// after a crash (SIGKILL) or a stop of the real relay process, the sender still learns every message's fate when it
/// connects, once.
/// </summary>
public sealed class HeldReceiptsTests : IClassFixture<PkiFixture>
{
    private const int Count = 50;
    private readonly TestPki _pki;

    public HeldReceiptsTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Theory(Timeout = 120_000)]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Delivered_receipts_held_for_an_offline_sender_survive_a_restart_and_reach_it_once_when_it_connects(bool killed)
    {
        await using var relay = new RelaydProcess(_pki);
        await relay.StartAsync();
        Envelope[] sent = [.. Enumerable.Range(0, Count).Select(i => Envelopes.New("alpha", "beta", toUser: "user-" + (i % 5)))];
        await using (RelayClient alpha = await relay.ConnectAsync("alpha", receipts: false))
        {
            foreach (Envelope envelope in sent)
            {
                await alpha.SendAsync(envelope).Within();
            }
        }

        // alpha is gone; beta takes and acknowledges everything: the DELIVERED receipts are held for alpha.
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            await beta.ConsumeAsync(_ => { }, limit: Count, TestContext.Current.CancellationToken).Within(30);
            // beta's next envelope is read after its DeliveryAcks; its Ack comes after a commit that covers what the
            // acks wrote to the log.
            await beta.SendAsync(Envelopes.New("beta", "gamma")).Within();
        }

        if (killed)
        {
            await relay.KillAsync();
        }
        else
        {
            Assert.Equal(0, await relay.TerminateAsync());
        }

        await relay.StartAsync();
        await relay.WaitForOutputAsync($"Holding {Count} receipts");
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            var delivered = new HashSet<ByteString>();
            while (delivered.Count < Count)
            {
                Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
                Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
                foreach (ByteString id in receipt.MessageIds)
                {
                    Assert.True(delivered.Add(id), "a receipt arrived twice");
                }
            }

            Assert.Equal(sent.Select(e => e.MessageId).ToHashSet(), delivered);
        }

        // Handed over: after another restart nothing is held any more.
        await relay.RestartAsync(kill: false);
        Assert.DoesNotContain("Holding", relay.Output, StringComparison.Ordinal);
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            Envelope probe = Envelopes.New("alpha", "gamma");
            await alpha.SendAsync(probe).Within();
            Assert.False(alpha.Receipts.TryRead(out Receipt? late), $"a receipt for {late?.MessageIds.Count} messages came again");
        }
    }
}
