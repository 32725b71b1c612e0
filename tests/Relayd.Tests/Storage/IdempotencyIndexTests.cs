using CsCheck;
using Relayd.Storage;

namespace Relayd.Tests.Storage;

/// <summary>
/// The dedup index's own rules, against a plain model of them (a dictionary beside a queue, what the index was before
/// it was packed into one ring): the oldest id is forgotten first at the capacity, ids older than the window are
/// forgotten when next looked up, a second record of an id keeps its time, and the ring's growth loses nothing.
/// </summary>
public sealed class IdempotencyIndexTests
{
    private const long WindowMs = 1_000;

    [Fact]
    public void Any_sequence_of_records_marks_and_lookups_answers_as_the_model_does()
    {
        // Small chunks, so that the ring takes and releases them, wraps round and comes back to released ones.
        Gen<(int Capacity, int Chunk, Op[] Ops)> cases = Gen.Select(Gen.Int[1, 48], Gen.Int[1, 8], Op.Gen.Array[1, 400]);
        cases.Sample(c => Check(c.Capacity, c.Chunk, c.Ops), iter: 2_000, print: c => $"capacity {c.Capacity}, chunk {c.Chunk}: {string.Join(", ", c.Ops)}");
    }

    [Fact]
    public void The_ring_takes_chunks_past_its_first_in_order_and_forgets_the_oldest_at_the_capacity()
    {
        const int capacity = 3 * IdempotencyIndex.ChunkSlots + 5; // three whole chunks and a short one
        var index = new IdempotencyIndex(capacity, TimeSpan.FromDays(1));
        Assert.Equal(0, index.AllocatedSlots);

        for (int i = 0; i < capacity + 100; i++)
        {
            index.Record(Id(i), 1_000 + i, Carried(i));
        }

        Assert.Equal(4 * IdempotencyIndex.ChunkSlots, index.AllocatedSlots);
        Assert.Equal(capacity, index.Count);
        Assert.False(index.TryGet(Id(99), 2_000, out _), "the 100 oldest were forgotten");
        Assert.True(index.TryGet(Id(100), 2_000, out IdempotencyIndex.Accepted oldest));
        Assert.Equal(1_100, oldest.AcceptedAtMs);
        Assert.True(index.TryGet(Id(capacity + 99), 2_000, out IdempotencyIndex.Accepted newest));
        Assert.Equal(Carried(capacity + 99), newest.Carried);

        var copied = new List<(UInt128 Id, long AcceptedAtMs, CarriedTo Carried)>();
        index.CopyTo(copied, 2_000);
        Assert.Equal(Enumerable.Range(100, capacity).Select(Id), copied.Select(c => c.Id));
    }

    [Fact]
    public void A_quiet_index_takes_one_chunk_and_a_small_capacity_is_its_size()
    {
        var quiet = new IdempotencyIndex(1_000_000, TimeSpan.FromDays(1));
        var small = new IdempotencyIndex(16, TimeSpan.FromDays(1));
        quiet.Record(Id(1), 1_000);
        small.Record(Id(1), 1_000);

        Assert.Equal(IdempotencyIndex.ChunkSlots, quiet.AllocatedSlots);
        Assert.Equal(16, small.AllocatedSlots);
    }

    [Fact]
    public void Memory_goes_back_when_the_ids_in_it_expire()
    {
        var index = new IdempotencyIndex(100_000, TimeSpan.FromMilliseconds(WindowMs));
        for (int i = 0; i < 3 * IdempotencyIndex.ChunkSlots; i++)
        {
            index.Record(Id(i), 1_000);
        }

        int before = index.AllocatedSlots;
        index.Expire(1_000 + WindowMs + 1);
        index.Record(Id(-1), 1_000 + WindowMs + 1);

        Assert.True(before >= 3 * IdempotencyIndex.ChunkSlots, $"{before} slots for {3 * IdempotencyIndex.ChunkSlots} ids");
        Assert.Equal(1, index.Count);
        Assert.Equal(IdempotencyIndex.ChunkSlots, index.AllocatedSlots); // the chunk of the one id left
    }

    private static void Check(int capacity, int chunk, Op[] ops)
    {
        var index = new IdempotencyIndex(capacity, TimeSpan.FromMilliseconds(WindowMs), chunk);
        var model = new Model(capacity);
        long now = 0;
        foreach (Op op in ops)
        {
            now += op.Advance;
            switch (op.Kind)
            {
                case OpKind.Record:
                    index.Record(Id(op.Id), now, op.Carried);
                    model.Record(Id(op.Id), now, op.Mark, op.Carried);
                    break;
                case OpKind.MarkDelivered:
                    index.MarkDelivered(Id(op.Id));
                    model.MarkDelivered(Id(op.Id));
                    break;
                case OpKind.TryGet:
                    bool found = index.TryGet(Id(op.Id), now, out IdempotencyIndex.Accepted accepted);
                    bool expected = model.TryGet(Id(op.Id), now, out (long At, ulong Mark, CarriedTo Carried) entry);
                    Assert.Equal(expected, found);
                    if (found)
                    {
                        Assert.Equal(new IdempotencyIndex.Accepted(entry.At, entry.Carried), accepted);
                    }

                    break;
                case OpKind.TryGetCarried:
                    Assert.Equal(model.TryGetCarried(Id(op.Id), out CarriedTo modelled), index.TryGetCarried(Id(op.Id), out CarriedTo carried));
                    Assert.Equal(modelled, carried);
                    break;
                case OpKind.CopyTo:
                    var copied = new List<(UInt128 Id, long AcceptedAtMs, CarriedTo Carried)>();
                    index.CopyTo(copied, now);
                    Assert.Equal(model.Copy(now), copied);
                    break;
            }

            Assert.Equal(model.Count, index.Count);

            // Memory follows the ids remembered: the chunks the live entries span (one more where they wrap past the
            // short last chunk), or the one the oldest is in when none is left.
            int chunkSize = (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)chunk), System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity));
            int spanned = (index.Count / chunkSize) + 2 + (capacity % chunkSize == 0 ? 0 : 1);
            Assert.True(index.AllocatedSlots <= spanned * chunkSize, $"{index.AllocatedSlots} slots allocated for {index.Count} ids in chunks of {chunkSize}");
        }
    }

    private static UInt128 Id(int i) => new((ulong)i * 0x9E3779B97F4A7C15, (ulong)i);

    private static CarriedTo Carried(int i) => new((uint)i, 1, (ulong)i * 31);

    internal enum OpKind
    {
        Record,
        MarkDelivered,
        TryGet,
        TryGetCarried,
        CopyTo,
    }

    /// <summary>One step: an id from a small pool (so ids repeat, collide in chains and come back after being forgotten).</summary>
    internal readonly record struct Op(OpKind Kind, int Id, long Advance, ulong Mark, CarriedTo Carried)
    {
        public static readonly Gen<Op> Gen = CsCheck.Gen.Select(
            CsCheck.Gen.Frequency((6, CsCheck.Gen.Const(OpKind.Record)), (2, CsCheck.Gen.Const(OpKind.MarkDelivered)), (3, CsCheck.Gen.Const(OpKind.TryGet)), (2, CsCheck.Gen.Const(OpKind.TryGetCarried)), (1, CsCheck.Gen.Const(OpKind.CopyTo))),
            CsCheck.Gen.Int[0, 64],
            CsCheck.Gen.Frequency((8, CsCheck.Gen.Const(0L)), (4, CsCheck.Gen.Long[1, 50]), (1, CsCheck.Gen.Long[WindowMs - 5, WindowMs + 5])),
            CsCheck.Gen.ULong[0, 5],
            CsCheck.Gen.Frequency((1, CsCheck.Gen.Const(default(CarriedTo))), (3, CsCheck.Gen.Select(CsCheck.Gen.UInt[0, 3], CsCheck.Gen.UInt[0, 3], (p, f) => new CarriedTo(p, f, p * 7)))),
            (kind, id, advance, mark, carried) => new Op(kind, id, advance, mark, carried));

        public override string ToString() => $"{Kind}({Id}, +{Advance} ms, mark {Mark}, {Carried.RecipientPartnerHash}/{Carried.Flags})";
    }

    /// <summary>The rules as plainly as they can be written.</summary>
    private sealed class Model(int capacity)
    {
        private readonly Dictionary<UInt128, (long At, ulong Mark, CarriedTo Carried)> _byId = [];
        private readonly Queue<(UInt128 Id, long At)> _byAge = new();

        public int Count => _byId.Count;

        public void Record(UInt128 id, long at, ulong mark, CarriedTo carried)
        {
            if (_byId.TryGetValue(id, out var existing))
            {
                if (carried.IsKnown)
                {
                    _byId[id] = existing with { Carried = existing.Carried.Delivered ? carried.WithDelivered() : carried };
                }

                return;
            }

            if (_byId.Count >= capacity)
            {
                _byId.Remove(_byAge.Dequeue().Id);
            }

            _byId.Add(id, (at, mark, carried));
            _byAge.Enqueue((id, at));
        }

        public void MarkDelivered(UInt128 id)
        {
            if (_byId.TryGetValue(id, out var existing))
            {
                _byId[id] = existing with { Carried = existing.Carried.WithDelivered() };
            }
        }

        public bool TryGet(UInt128 id, long now, out (long At, ulong Mark, CarriedTo Carried) entry)
        {
            Expire(now);
            return _byId.TryGetValue(id, out entry);
        }

        public bool TryGetCarried(UInt128 id, out CarriedTo carried)
        {
            bool found = _byId.TryGetValue(id, out var entry);
            carried = entry.Carried;
            return found;
        }

        public List<(UInt128 Id, long AcceptedAtMs, CarriedTo Carried)> Copy(long now)
        {
            Expire(now);
            return [.. _byAge.Select(a => (a.Id, a.At, _byId[a.Id].Carried))];
        }

        private void Expire(long now)
        {
            while (_byAge.TryPeek(out var oldest) && now - oldest.At > WindowMs)
            {
                _byAge.Dequeue();
                _byId.Remove(oldest.Id);
            }
        }
    }
}
