using System.Buffers;
using Google.Protobuf;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Storage.WalStore;
using Relayd.Tests.Framing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Routing;

/// <summary>A shard queue: FIFO per shard, bounded memory, at-least-once across sessions, receipts on ack.</summary>
public sealed class ShardQueueTests : IDisposable
{
    private readonly TempWalDirectory _wal = new();
    private readonly WalEnvelopeStore _store;

    public ShardQueueTests() =>
        _store = WalEnvelopeStore.Open(new StorageOptions { Directory = _wal.Path, SegmentBytes = 4 * 1024 * 1024, ReserveBytes = 0 }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

    public void Dispose()
    {
        _store.Dispose();
        _wal.Dispose();
    }

    private sealed class Consumer : IDeliveryConsumer
    {
        public int Signals;

        public void OnDeliveriesAvailable() => Interlocked.Increment(ref Signals);
    }

    private readonly List<SettledEnvelope> _receipts = [];

    [Fact]
    public void Deliveries_come_out_in_the_order_they_went_in_as_parseable_Deliver_frames()
    {
        var queue = NewQueue();
        var consumer = new Consumer();
        queue.SetOwner(consumer);
        Frame[] sent = [.. Enumerable.Range(0, 100).Select(FrameReaderTests.SampleFrame)];
        foreach (Frame frame in sent)
        {
            Assert.Equal(AppendResult.Appended, Append(queue, frame));
        }

        List<Deliver> delivered = TakeAll(queue, consumer);

        Assert.Equal(sent.Select(f => f.Envelope), delivered.Select(d => d.Envelope));
        Assert.True(consumer.Signals > 0);
    }

    [Fact]
    public void Acknowledging_a_delivery_yields_a_DELIVERED_receipt_for_its_sender_and_frees_its_memory()
    {
        var queue = NewQueue();
        var consumer = new Consumer();
        queue.SetOwner(consumer);
        Frame frame = FrameReaderTests.SampleFrame(1);
        var alpha = new PartnerInfo(new PartnerOptions { Id = "alpha" }, new RelayLimits());
        Append(queue, frame, sender: alpha);
        Deliver delivered = Assert.Single(TakeAll(queue, consumer));

        Assert.Equal(AckResult.Acknowledged, queue.Acknowledge(delivered.DeliveryId, _receipts));
        Assert.Equal(AckResult.AlreadyAcknowledged, queue.Acknowledge(delivered.DeliveryId, _receipts));

        (PartnerInfo? sender, ReceiptItem item, StoreRef storeRef) = Assert.Single(_receipts);
        Assert.False(storeRef.IsNone);
        Assert.Same(alpha, sender);
        Assert.Equal(ReceiptStatus.Delivered, item.Status);
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void A_delivery_id_never_sent_cannot_be_acknowledged()
    {
        var queue = NewQueue();
        Append(queue, FrameReaderTests.SampleFrame(1));

        Assert.Equal(AckResult.UnknownDelivery, queue.Acknowledge(1, _receipts)); // appended, not yet sent
        Assert.Equal(AckResult.UnknownDelivery, queue.Acknowledge(99, _receipts));
        Assert.Empty(_receipts);
    }

    [Fact]
    public void Beyond_the_memory_bound_envelopes_stay_in_the_log_only_and_the_bound_holds()
    {
        const long bound = 2L * 1024 * 1024;
        var queue = new ShardQueue(0, bound, maxEntries: 1_000_000, windowEnvelopes: 1000, windowBytes: 1 << 20);
        var big = new Frame { Envelope = FrameReaderTests.SampleFrame(1).Envelope.Clone() };
        big.Envelope.Ciphertext = ByteString.CopyFrom(new byte[10_000]);

        for (int i = 0; i < 500; i++)
        {
            Assert.Equal(AppendResult.Appended, Append(queue, big));
        }

        Assert.InRange(queue.Count, 150, 210);
        Assert.Equal(500 - queue.Count, queue.SpilledCount);
        Assert.True(queue.IsSpilled);
        Assert.True(queue.SlabBytes <= bound, $"{queue.SlabBytes} bytes held, bound {bound}");
    }

    [Fact]
    public void A_new_owner_gets_every_unacknowledged_delivery_again_in_order()
    {
        var queue = NewQueue();
        var first = new Consumer();
        var second = new Consumer();
        queue.SetOwner(first);
        for (int i = 0; i < 10; i++)
        {
            Append(queue, FrameReaderTests.SampleFrame(i));
        }

        List<Deliver> firstTry = TakeAll(queue, first);
        queue.Acknowledge(firstTry[0].DeliveryId, _receipts);
        queue.Acknowledge(firstTry[1].DeliveryId, _receipts);
        queue.SetOwner(second);

        Assert.False(queue.TryTakeRange(first, 0, _receipts, out _));
        List<Deliver> secondTry = TakeAll(queue, second);
        Assert.Equal(firstTry.Skip(2).Select(d => d.DeliveryId), secondTry.Select(d => d.DeliveryId));
    }

    [Fact]
    public void Expired_envelopes_are_never_delivered_and_their_senders_hear_EXPIRED()
    {
        var queue = NewQueue();
        var consumer = new Consumer();
        Append(queue, FrameReaderTests.SampleFrame(1), expiresAtMs: 1_000);
        Append(queue, FrameReaderTests.SampleFrame(2), expiresAtMs: long.MaxValue);
        queue.SetOwner(consumer);

        Assert.True(queue.TryTakeRange(consumer, nowMs: 2_000, _receipts, out DeliveryRange range));
        queue.CompleteWrite(range);

        Assert.Equal(1, range.Count);
        Assert.Equal(ReceiptStatus.ExpiredUndelivered, Assert.Single(_receipts).Receipt.Status);
    }

    private ShardQueue NewQueue() => new(0, 64L * 1024 * 1024, 1_000_000, windowEnvelopes: 100_000, windowBytes: 64 << 20);

    private AppendResult Append(ShardQueue queue, Frame frame, PartnerInfo? sender = null, long expiresAtMs = long.MaxValue)
    {
        var wire = new ReadOnlySequence<byte>(frame.ToByteArray());
        Assert.True(EnvelopeHeader.TryRead(wire, out EnvelopeHeader header));
        AppendResult result;
        while ((result = queue.TryAppend(_store, wire, header, sender, 1, expiresAtMs, out _)) == AppendResult.Busy)
        {
            _store.WaitForSpaceAsync(CancellationToken.None).AsTask().Wait();
        }

        return result;
    }

    private List<Deliver> TakeAll(ShardQueue queue, IDeliveryConsumer consumer)
    {
        var delivered = new List<Deliver>();
        while (queue.TryTakeRange(consumer, 0, _receipts, out DeliveryRange range))
        {
            var stream = new MemoryStream(range.Memory.ToArray());
            while (stream.Position < stream.Length)
            {
                delivered.Add(Frame.Parser.ParseDelimitedFrom(stream).Deliver);
            }

            queue.CompleteWrite(range);
        }

        return delivered;
    }
}
