using System.Diagnostics;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Functional;

/// <summary>
/// A recipient connection that stops reading (its process hung, its kernel alive) is closed once a write makes no
/// progress for the write timeout, and its conversations continue at once on the partner's other connection.
/// </summary>
public sealed class StuckRecipientTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public StuckRecipientTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_connection_that_stops_reading_is_closed_and_all_conversations_arrive_in_order_on_the_healthy_one()
    {
        const int Conversations = 16;
        const int PerConversation = 48;
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Limits.ShardCount = 16;
            o.Limits.WriteTimeout = TimeSpan.FromSeconds(2);
        });

        // beta's first connection reads its Welcome and then nothing, with a small receive buffer; its second is healthy.
        await using RawPartnerConnection stuck = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca, receiveBufferBytes: 4096);
        await stuck.SendHelloAsync();
        Assert.Equal(Frame.BodyOneofCase.Welcome, (await stuck.ReadFrameAsync())?.BodyCase);
        await using RelayClient healthy = await relay.ConnectAsync("beta");
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        var ledger = new ConversationLedger("alpha", "beta", Conversations, ciphertextBytes: 32 * 1024);
        var arrivals = new ArrivalLog(ledger);
        using var stopReceiving = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        Task receiving = Task.Run(() => arrivals.ReceiveAsync(healthy, stopReceiving.Token), TestContext.Current.CancellationToken);

        // 24 MiB for 16 conversations: the stuck connection's share is far more than the socket buffers hold.
        var sends = new List<Task>();
        for (int i = 0; i < Conversations * PerConversation; i++)
        {
            ConversationLedger.Sent sent = ledger.Next();
            sends.Add(alpha.SendAsync(sent.Envelope).ContinueWith(t => sent.Ack = t.Result, TaskScheduler.Default));
        }

        await Task.WhenAll(sends).Within(60);
        var sentAll = Stopwatch.StartNew();
        await WaitUntilAsync(() => arrivals.Distinct == ledger.AckedCount, seconds: 60, () => $"{arrivals.Distinct} of {ledger.AckedCount} envelopes arrived on the healthy connection");
        await WaitUntilAsync(() => relay.Server.Sessions.Count(s => s.Partner.Id == "beta") == 1, seconds: 30, () => "the stuck connection is still open");
        TimeSpan closedAfter = sentAll.Elapsed;
        await stopReceiving.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receiving);

        Assert.Equal(Conversations * PerConversation, ledger.AckedCount);
        Assert.Empty(arrivals.Problems);
        Assert.All(ledger.Acked, s => Assert.True(arrivals.HasArrived(s.Envelope.MessageId)));
        await relay.WaitForLogAsync("made no progress");
        Assert.True(closedAfter < TimeSpan.FromSeconds(20), $"the stuck connection was closed {closedAfter} after the last send");

        // The stuck connection is really closed (not left ESTABLISHED): reading what it had buffered ends.
        await stuck.ReadUntilClosedAsync(timeoutSeconds: 10).Within(30);
    }

    private static async Task WaitUntilAsync(Func<bool> condition, int seconds, Func<string> failure)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(seconds))
            {
                throw new Xunit.Sdk.XunitException($"after {seconds} s: {failure()}");
            }

            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
