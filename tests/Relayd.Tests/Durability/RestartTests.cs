using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Durability;

/// <summary>
/// Store-and-forward across restarts of an in-process relay on the same write-ahead log: what was acknowledged to a
/// sender is delivered after the restart, in conversation order; what the recipient acknowledged is not delivered
/// again; resends are still recognised; expired envelopes are never delivered.
/// </summary>
public sealed class RestartTests : IClassFixture<PkiFixture>, IDisposable
{
    private readonly TestPki _pki;
    private readonly TempWalDirectory _wal = new();

    public RestartTests(PkiFixture fixture) => _pki = fixture.Pki;

    public void Dispose() => _wal.Dispose();

    [Fact]
    public async Task A_backlog_larger_than_memory_for_an_offline_recipient_survives_a_restart_and_arrives_in_conversation_order()
    {
        const int Count = 3000;
        const int Users = 5;
        var sent = new List<Envelope>();
        await using (TestRelay relay = StartOnLog())
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            byte[] ciphertext = Envelopes.RandomCiphertext(1024);
            var acks = new List<Task<Ack>>();
            for (int i = 0; i < Count; i++)
            {
                Envelope envelope = Envelopes.New("alpha", "beta", toUser: "user-" + (i % Users), ciphertext: ciphertext);
                envelope.ClientTimestampMs = i;
                sent.Add(envelope);
                acks.Add(alpha.SendAsync(envelope));
            }

            await Task.WhenAll(acks).Within(60);
            Assert.Contains(relay.Server.Partners.Find("beta")!.Mailbox.Shards, s => s.IsSpilled); // beyond memory: in the log only
            Relayd.Storage.StorageMetrics metrics = relay.Server.StorageMetrics;
            Relayd.Storage.PartnerBacklog beta = Assert.Single(metrics.Backlog, b => b.Partner == "beta");
            Assert.Equal(Count, beta.InMemory + beta.InLogOnly);
            Assert.True(beta.InLogOnly > 0);
            Assert.True(metrics.Syncs > 0 && metrics.SyncP50Microseconds > 0 && metrics.Segments > 0 && metrics.LogBytes > 0, metrics.ToString());
        }

        await using (TestRelay restarted = StartOnLog())
        await using (RelayClient beta = await restarted.ConnectAsync("beta"))
        {
            var received = new List<Envelope>();
            await beta.ConsumeAsync(d => received.Add(d.Envelope), limit: Count, TestContext.Current.CancellationToken).Within(60);

            Assert.Equal(Count, received.Count);
            Assert.Equal(sent.Select(e => e.MessageId).ToHashSet(), received.Select(e => e.MessageId).ToHashSet());
            foreach (IGrouping<ByteString, Envelope> conversation in received.GroupBy(e => e.RecipientUser))
            {
                long[] order = [.. conversation.Select(e => e.ClientTimestampMs)];
                Assert.Equal(order.Order(), order);
            }
        }
    }

    [Fact]
    public async Task What_the_recipient_acknowledged_is_not_delivered_again_after_a_restart_but_the_rest_is()
    {
        Envelope[] envelopes = [.. Enumerable.Range(0, 20).Select(i => Envelopes.New("alpha", "beta", toUser: "user-" + i))];
        await using (TestRelay relay = StartOnLog())
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            foreach (Envelope envelope in envelopes)
            {
                await alpha.SendAsync(envelope).Within();
            }

            // beta takes and acknowledges the first 12 only; alpha's DELIVERED receipts show the relay processed them.
            int acknowledged = 0;
            var delivered = new HashSet<ByteString>();
            while (acknowledged < 12)
            {
                Deliver deliver = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
                if (envelopes.Take(12).Any(e => e.MessageId == deliver.Envelope.MessageId) && delivered.Add(deliver.Envelope.MessageId))
                {
                    await beta.AcknowledgeAsync(deliver);
                    acknowledged++;
                }
            }

            int receipts = 0;
            while (receipts < 12)
            {
                Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
                Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
                receipts += receipt.MessageIds.Count;
            }
        }

        await using (TestRelay restarted = StartOnLog())
        await using (RelayClient beta = await restarted.ConnectAsync("beta"))
        {
            var again = new List<ByteString>();
            await beta.ConsumeAsync(d => again.Add(d.Envelope.MessageId), limit: 8, TestContext.Current.CancellationToken).Within();

            Assert.Equal(envelopes.Skip(12).Select(e => e.MessageId).ToHashSet(), again.ToHashSet());
            Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 500), "an acknowledged envelope was delivered again");
        }
    }

    [Fact]
    public async Task A_resend_after_a_restart_gets_the_original_Ack_and_is_delivered_once()
    {
        Envelope envelope = Envelopes.New("alpha", "beta");
        Ack original;
        await using (TestRelay relay = StartOnLog())
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            original = await alpha.SendAsync(envelope).Within();
        }

        await using (TestRelay restarted = StartOnLog())
        await using (RelayClient alpha = await restarted.ConnectAsync("alpha"))
        await using (RelayClient beta = await restarted.ConnectAsync("beta"))
        {
            Ack resent = await alpha.SendAsync(envelope).Within();

            Assert.True(resent.Duplicate);
            Assert.False(original.Duplicate);
            Assert.Equal(original.AcceptedAtMs, resent.AcceptedAtMs);
            Deliver deliver = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
            Assert.Equal(envelope.MessageId, deliver.Envelope.MessageId);
            Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 500), "the resend was delivered twice");
        }
    }

    [Fact]
    public async Task An_envelope_that_expires_while_its_recipient_is_away_is_never_delivered_and_its_sender_gets_EXPIRED()
    {
        Envelope envelope = Envelopes.New("alpha", "beta");
        envelope.ExpiresAtMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() + 1500;
        Envelope keeper = Envelopes.New("alpha", "beta", toUser: "user-2");
        await using TestRelay relay = StartOnLog(o => o.Storage.RetentionInterval = TimeSpan.FromMilliseconds(100));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await alpha.SendAsync(envelope).Within();
        await alpha.SendAsync(keeper).Within();

        Receipt receipt = await alpha.Receipts.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
        Assert.Equal(ReceiptStatus.ExpiredUndelivered, receipt.Status);
        Assert.Equal(envelope.MessageId, Assert.Single(receipt.MessageIds));

        await using RelayClient beta = await relay.ConnectAsync("beta");
        Deliver deliver = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
        Assert.Equal(keeper.MessageId, deliver.Envelope.MessageId);
        Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 300), "an expired envelope was delivered");
    }

    [Fact]
    public async Task A_damaged_record_before_the_tail_makes_relayd_refuse_to_start_naming_the_segment_and_offset()
    {
        await using (TestRelay relay = StartOnLog())
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            for (int i = 0; i < 20; i++)
            {
                await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
            }
        }

        // Flip a byte inside the first record's payload: later valid records make it corruption, not a torn tail.
        string segment = _wal.Segment(1);
        await using (var file = new FileStream(segment, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = 40;
            int value = file.ReadByte();
            file.Position = 40;
            file.WriteByte((byte)(value ^ 0xFF));
        }

        string config = Path.Combine(_wal.Path, "relayd.toml");
        await File.WriteAllTextAsync(config, $"""
            [relay]
            listen = "127.0.0.1:0"
            [tls]
            certificate = "{_pki.ServerCertPath}"
            key = "{_pki.ServerKeyPath}"
            partner_ca = "{_pki.CaPath}"
            [wal]
            dir = "{_wal.Path}"
            reserve_bytes = 0
            [[partners]]
            id = "alpha"
            [[partners]]
            id = "beta"
            """, TestContext.Current.CancellationToken);

        ExternalProcess.Result run = await ExternalProcess.RunRelaydAsync("run", "--config", config);

        Assert.Equal(65, run.ExitCode);
        Assert.Contains("wal-0000000000000001.log", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("offset 0", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("relayd wal verify --dir", run.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_torn_last_record_is_cut_away_at_start_and_every_earlier_envelope_is_delivered()
    {
        Envelope[] envelopes = [.. Enumerable.Range(0, 10).Select(i => Envelopes.New("alpha", "beta", toUser: "user-" + i))];
        await using (TestRelay relay = StartOnLog())
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            foreach (Envelope envelope in envelopes)
            {
                await alpha.SendAsync(envelope).Within();
            }
        }

        // Damage the end of the last record, as a write cut short by power loss would: nothing valid follows it.
        string segment = _wal.Segment(1);
        byte[] data = await File.ReadAllBytesAsync(segment, TestContext.Current.CancellationToken);
        int last = 0;
        for (int offset = 0; BitConverter.ToInt32(data, offset) is int length and > 0; offset += 16 + ((length + 7) & ~7))
        {
            last = offset;
        }

        int payloadLength = BitConverter.ToInt32(data, last);
        await using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write))
        {
            file.Position = last + 16 + (payloadLength / 2);
            file.Write(new byte[(payloadLength / 2) + 1]); // the second half of the payload never reached the disk
        }

        await using TestRelay restarted = StartOnLog();
        await restarted.WaitForLogAsync("torn");
        await using RelayClient beta = await restarted.ConnectAsync("beta");
        var received = new List<ByteString>();
        await beta.ConsumeAsync(d => received.Add(d.Envelope.MessageId), limit: 9, TestContext.Current.CancellationToken).Within();

        Assert.Equal(envelopes.Take(9).Select(e => e.MessageId).ToHashSet(), received.ToHashSet());
        Assert.Equal(9, received.Count);
        Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 300), "the torn envelope was delivered");
    }

    [Fact]
    public async Task Delivered_segments_are_deleted_and_their_message_ids_are_still_recognised_after_a_restart()
    {
        Envelope first = Envelopes.New("alpha", "beta");
        Ack original;
        await using (TestRelay relay = StartOnLog(o => o.Storage.RetentionInterval = TimeSpan.FromMilliseconds(50)))
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            original = await alpha.SendAsync(first).Within();
            byte[] ciphertext = Envelopes.RandomCiphertext(16 * 1024);
            await Task.WhenAll(Enumerable.Range(0, 400).Select(_ => alpha.SendAsync(Envelopes.New("alpha", "beta", ciphertext: ciphertext)))).Within(30);
            await beta.ConsumeAsync(_ => { }, limit: 401, TestContext.Current.CancellationToken).Within(30);

            // 6.4 MiB through 1 MiB segments, all delivered (once the relay has read beta's last acks): retention
            // deletes the segments behind the writer.
            DateTime deadline = DateTime.UtcNow.AddSeconds(20);
            Relayd.Wal.WriteAheadLog wal = ((Relayd.Storage.WalStore.WalEnvelopeStore)relay.Server.Store).Log;
            while ((wal.Segments[0] < 4 || File.Exists(_wal.Segment(1)) || relay.Server.Partners.Find("beta")!.Mailbox.Shards.Sum(s => s.Count) > 0) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, TestContext.Current.CancellationToken);
            }

            Assert.True(wal.Segments[0] >= 4, $"segments still in the log: {string.Join(", ", wal.Segments)}");
            Assert.False(File.Exists(_wal.Segment(1)));
        }

        await using (TestRelay restarted = StartOnLog())
        await using (RelayClient alpha = await restarted.ConnectAsync("alpha"))
        await using (RelayClient beta = await restarted.ConnectAsync("beta"))
        {
            Ack resent = await alpha.SendAsync(first).Within();

            Assert.True(resent.Duplicate, "the id of an envelope in a deleted segment was forgotten");
            Assert.Equal(original.AcceptedAtMs, resent.AcceptedAtMs);
            Assert.True(await Envelopes.StaysEmpty(beta.Deliveries, 300), "a delivered envelope came back");
        }
    }

    private TestRelay StartOnLog(Action<RelayOptions>? configure = null) => TestRelay.Start(_pki, o =>
    {
        o.Storage.Directory = _wal.Path;
        o.Storage.ReserveBytes = 0;
        o.Storage.SegmentBytes = 1024 * 1024;
        o.Limits.MaxQueuedBytesPerPartner = 1024 * 1024;
        o.Limits.ShardCount = 2;
        configure?.Invoke(o);
    });
}
