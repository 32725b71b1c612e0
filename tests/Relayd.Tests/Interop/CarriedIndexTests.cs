using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Storage;
using Relayd.Storage.WalStore;
using Relayd.Tests.Storage;
using Relayd.Wal;

namespace Relayd.Tests.Interop;

/// <summary>
/// What the relay remembers of where a message went (<see cref="CarriedTo"/> in the dedup index), which abuse
/// reports and read receipts check: the claims it confirms and refuses, no allocation per envelope, and its
/// snapshot (RDD2, still reading RDD1).
/// </summary>
public sealed class CarriedIndexTests
{
    private static readonly ReadOnlySequence<byte> Bob = new("bob"u8.ToArray());
    private static readonly ReadOnlySequence<byte> Alice = new("alice"u8.ToArray());

    [Fact]
    public void A_delivered_id_confirms_its_recipient_partner_and_its_ordered_pair_of_users_only()
    {
        var index = new IdempotencyIndex(capacity: 16, TimeSpan.FromDays(1));
        index.Record(1, 1000, CarriedTo.Of("alpha"u8, Bob, Alice));
        Assert.True(index.TryGetCarried(1, out CarriedTo accepted));
        Assert.False(accepted.DeliveredTo("alpha"u8), "accepted but not yet acknowledged by its recipient");

        index.MarkDelivered(1);
        Assert.True(index.TryGetCarried(1, out CarriedTo carried));

        Assert.True(carried.DeliveredTo("alpha"u8));
        Assert.False(carried.DeliveredTo("gamma"u8));
        Assert.True(carried.DeliveredBetween("alpha"u8, "bob"u8, "alice"u8));
        Assert.False(carried.DeliveredBetween("alpha"u8, "alice"u8, "bob"u8), "the other direction");
        Assert.False(carried.DeliveredBetween("alpha"u8, "bob"u8, "carol"u8));
        Assert.False(index.TryGetCarried(2, out _));
    }

    [Fact]
    public void Recording_and_marking_delivered_allocate_nothing_once_the_index_is_full()
    {
        var index = new IdempotencyIndex(capacity: 1024, TimeSpan.FromDays(1));
        for (int i = 0; i < 4096; i++)
        {
            index.Record((UInt128)i, 1000, CarriedTo.Of("alpha"u8, Bob, Alice));
        }

        int allocating = 0;
        for (int i = 4096; i < 14096; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            index.Record((UInt128)i, 1000, CarriedTo.Of("alpha"u8, Bob, Alice));
            index.MarkDelivered((UInt128)i);
            if (GC.GetAllocatedBytesForCurrentThread() != before)
            {
                allocating++;
            }
        }

        // Counted, not summed (as AdmissionPipelineTests): a retired allocation context shows up once, not per call.
        Assert.InRange(allocating, 0, 5);
        Assert.True(index.TryGetCarried(14095, out CarriedTo last) && last.DeliveredTo("alpha"u8));
        Assert.False(index.TryGetCarried(0, out _), "the oldest ids went to stay within capacity");
    }

    [Fact]
    public void The_snapshot_keeps_where_each_id_went_and_a_version_1_snapshot_still_loads_its_ids()
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("relayd-carried-");
        try
        {
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var written = new Indexes();
            written.Alpha.Record(7, now, CarriedTo.Of("beta"u8, Bob, Alice));
            written.Alpha.MarkDelivered(7);
            DedupSnapshot.Write(directory.FullName, written, now, NullLogger.Instance);
            Assert.Equal("RDD2"u8.ToArray(), File.ReadAllBytes(Path.Combine(directory.FullName, DedupSnapshot.FileName))[..4]);

            var loaded = new Indexes();
            Assert.Equal(1, DedupSnapshot.Load(directory.FullName, loaded));
            Assert.True(loaded.Alpha.TryGetCarried(7, out CarriedTo carried));
            Assert.True(carried.DeliveredBetween("beta"u8, "bob"u8, "alice"u8));

            File.WriteAllBytes(Path.Combine(directory.FullName, DedupSnapshot.FileName), Version1Snapshot(9, now));
            var old = new Indexes();
            Assert.Equal(1, DedupSnapshot.Load(directory.FullName, old));
            Assert.True(old.Alpha.TryGet(9, now, out _), "a resend is still recognised");
            Assert.True(old.Alpha.TryGetCarried(9, out CarriedTo unknown));
            Assert.False(unknown.IsKnown);
            Assert.False(unknown.DeliveredTo("beta"u8), "where it went is not known: reports about it are unverified");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Fact]
    public void A_snapshot_larger_than_its_write_buffer_loads_back_every_id_of_every_partner_in_age_order()
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("relayd-carried-");
        try
        {
            long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var written = new TwoPartners(capacity: 100_000);
            for (int i = 0; i < 60_000; i++) // 2.4 MB per partner: written through the 1 MiB buffer in several goes
            {
                written.Alpha.Record((UInt128)i, now - 60_000 + i, CarriedTo.Of("beta"u8, Bob, Alice, delivered: i % 3 == 0));
                written.Gamma.Record(((UInt128)i << 64) | 1, now - 60_000 + i, default);
            }

            DedupSnapshot.Write(directory.FullName, written, now, NullLogger.Instance);
            var loaded = new TwoPartners(capacity: 100_000);
            Assert.Equal(120_000, DedupSnapshot.Load(directory.FullName, loaded));

            foreach ((IdempotencyIndex from, IdempotencyIndex to) in (ReadOnlySpan<(IdempotencyIndex, IdempotencyIndex)>)[(written.Alpha, loaded.Alpha), (written.Gamma, loaded.Gamma)])
            {
                var before = new List<(UInt128 Id, long AcceptedAtMs, CarriedTo Carried)>();
                var after = new List<(UInt128 Id, long AcceptedAtMs, CarriedTo Carried)>();
                from.CopyTo(before, now);
                to.CopyTo(after, now);
                Assert.Equal(before, after);
            }
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>"RDD1", one partner "alpha" with one id, CRC-32C: the format relays before read receipts wrote.</summary>
    private static byte[] Version1Snapshot(UInt128 id, long acceptedAtMs)
    {
        byte[] data = new byte[4 + 2 + 5 + 4 + 24 + 4];
        "RDD1"u8.CopyTo(data);
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(4), 5);
        "alpha"u8.CopyTo(data.AsSpan(6));
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(11), 1);
        BinaryPrimitives.WriteUInt128LittleEndian(data.AsSpan(15), id);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(31), acceptedAtMs);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(39), Crc32C.Compute(data.AsSpan(0, 39)));
        return data;
    }

    private sealed class TwoPartners(int capacity) : IDedupIndexes
    {
        public IdempotencyIndex Alpha { get; } = new(capacity, TimeSpan.FromDays(1));

        public IdempotencyIndex Gamma { get; } = new(capacity, TimeSpan.FromDays(1));

        public IEnumerable<SenderDedup> All => [new SenderDedup("alpha"u8.ToArray(), Alpha), new SenderDedup("gamma"u8.ToArray(), Gamma)];

        public IdempotencyIndex? Find(string partnerId) => partnerId switch { "alpha" => Alpha, "gamma" => Gamma, _ => null };
    }

    private sealed class Indexes : IDedupIndexes
    {
        public IdempotencyIndex Alpha { get; } = new(capacity: 1000, TimeSpan.FromDays(1));

        public IEnumerable<SenderDedup> All => [new SenderDedup("alpha"u8.ToArray(), Alpha)];

        public IdempotencyIndex? Find(string partnerId) => partnerId == "alpha" ? Alpha : null;
    }
}
