using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Read receipts (docs/protocol.md, "Read receipts") over real TLS: a recipient's ReadReceipt becomes Receipt(READ)
/// for the sender partner, only for what the relay delivered from it to that recipient; held while the sender is
/// offline, across a SIGKILL too.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReadReceiptTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ReadReceiptTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task The_sender_gets_READ_for_exactly_the_ids_delivered_to_the_reader_and_the_reader_hears_how_many_were_ignored()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<RelayException>();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { OnRelayError = errors.Enqueue });
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        Envelope first = await InteropFlows.CarriedAsync(alpha, beta, "alice", "bob");
        Envelope second = await InteropFlows.CarriedAsync(alpha, beta, "alice", "bob");
        Envelope toGamma = await InteropFlows.CarriedAsync(alpha, gamma, "alice", "gina"); // delivered, but not to beta
        Envelope fromGamma = await InteropFlows.CarriedAsync(gamma, beta, "gina", "bob"); // delivered to beta, but not from alpha

        var read = new ReadReceipt { SenderPartner = "alpha", ReadAtMs = 1_765_000_000_000 };
        read.MessageIds.AddRange([first.MessageId, second.MessageId, toGamma.MessageId, fromGamma.MessageId, InteropFlows.NewId()]);
        await beta.SendReadReceiptAsync(read);
        Receipt receipt = await InteropFlows.NextReadAsync(alpha);

        Assert.Equal(ReceiptStatus.Read, receipt.Status);
        Assert.Equal([first.MessageId, second.MessageId], receipt.MessageIds);
        Assert.Equal(1_765_000_000_000, receipt.AtMs);
        await WaitUntilAsync(() => !errors.IsEmpty);
        RelayException ignored = Assert.Single(errors);
        Assert.Equal(ErrorCode.UnknownMessage, ignored.Code);
        Assert.Contains("3 of the 5", ignored.Message, StringComparison.Ordinal);
        Assert.True(await Envelopes.StaysEmpty(gamma.Receipts, 300), "gamma's message was not read by gamma's recipient");
    }

    [Fact]
    public async Task Without_read_at_the_relay_stamps_its_own_time_and_a_receipt_naming_nothing_delivered_forwards_nothing()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<RelayException>();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { OnRelayError = errors.Enqueue });
        Envelope sent = await InteropFlows.CarriedAsync(alpha, beta, "alice", "bob");

        var unknown = new ReadReceipt { SenderPartner = "alpha" };
        unknown.MessageIds.Add(InteropFlows.NewId());
        await beta.SendReadReceiptAsync(unknown);
        await WaitUntilAsync(() => !errors.IsEmpty);
        Assert.True(await Envelopes.StaysEmpty(alpha.Receipts, 300));

        long before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var read = new ReadReceipt { SenderPartner = "alpha" };
        read.MessageIds.Add(sent.MessageId);
        await beta.SendReadReceiptAsync(read);
        Receipt receipt = await InteropFlows.NextReadAsync(alpha);
        Assert.InRange(receipt.AtMs, before, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    [Fact]
    public async Task A_READ_for_an_offline_sender_is_held_survives_SIGKILL_and_is_delivered_when_it_connects()
    {
        await using var relay = new RelaydProcess(_pki);
        await relay.StartAsync();
        Envelope sent;
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
            {
                sent = await InteropFlows.CarriedAsync(alpha, beta, "alice", "bob");
            }

            // alpha's session is gone at the relay too: a READ sent before the relay saw it close would go to that
            // dying session, as any receipt does, instead of being held (CI once saw it so).
            await relay.WaitForOutputAsync("of partner alpha closed");
            var read = new ReadReceipt { SenderPartner = "alpha", ReadAtMs = 1_765_000_000_123 };
            read.MessageIds.Add(sent.MessageId);
            await beta.SendReadReceiptAsync(read);

            // ReadReceipt has no ack: wait until the held receipt is on disk (its message id in the interop log).
            await WaitUntilAsync(() => InteropLogHolds(relay.WalDirectory, sent.MessageId.ToByteArray()));
        }

        await relay.RestartAsync(kill: true);

        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            Receipt receipt = await InteropFlows.NextReadAsync(alpha);
            Assert.Equal([sent.MessageId], receipt.MessageIds);
            Assert.Equal(1_765_000_000_123, receipt.AtMs);
        }

        // Handed over: not held again for the next connection.
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            Assert.True(await Envelopes.StaysEmpty(alpha.Receipts, 500));
        }
    }

    private static bool InteropLogHolds(string walDirectory, byte[] marker)
    {
        string directory = Path.Combine(walDirectory, "interop");
        if (!Directory.Exists(directory))
        {
            return false;
        }

        foreach (string segment in Directory.EnumerateFiles(directory, "wal-*.log"))
        {
            using var file = new FileStream(segment, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            byte[] bytes = new byte[file.Length];
            file.ReadExactly(bytes);
            if (bytes.AsSpan().IndexOf(marker) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, int seconds = 10)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not hold in time");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
