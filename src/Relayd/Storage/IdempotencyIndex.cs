using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Relayd.Storage;

/// <summary>
/// Remembers the message ids one sender partner used in the dedup window, so that a resend gets the original Ack
/// (as Matrix does with transaction ids) and is not routed twice. Fixed capacity: the oldest ids are forgotten first.
/// Each id also keeps where it went (<see cref="CarriedTo"/>), which abuse reports and read receipts check.
/// </summary>
/// <remarks>
/// <para>
/// Written by hand (no served package has a fixed-capacity, insertion-ordered hash set that forgets its oldest
/// entries): the entries sit in one ring in the order they were accepted, so the age queue is the ring itself, and a
/// table of chain heads indexes it. 56 bytes per entry and 4 to 8 bytes of chain heads per entry: about 60 bytes per
/// id at the 1 M default (57 MiB per sender partner), where a <c>Dictionary</c> beside a <c>Queue</c> took 122.5 (and the dictionary's resizes
/// left large-object garbage behind). The ring starts small and doubles up to the capacity, so a quiet partner costs
/// little; a full index inserts and forgets without allocating.
/// </para>
/// <para>
/// Message ids are the partner's choice, so bucket positions come from a seeded xxHash3 (a per-process random seed):
/// a partner cannot aim ids at one chain.
/// </para>
/// <para>
/// Rebuilt at start from the envelope records still in the write-ahead log and from the dedup snapshot written
/// before retention deletes segments (the WAL store's <c>dedup.snapshot</c>), so it survives restarts. It lives beside
/// the store that saves it (<see cref="IDedupIndexes"/>); the route step owns one per sender partner.
/// </para>
/// </remarks>
internal sealed class IdempotencyIndex
{
    /// <summary>Entries the ring starts with (at most the capacity): 224 KiB.</summary>
    internal const int InitialSlots = 1 << 12;

    private static readonly long Seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(sizeof(long)));

    private readonly int _capacity;
    private readonly long _windowMs;
    private Slot[] _slots; // a ring: _slots[_oldest] is the oldest of _count entries
    private int[] _chains; // per bucket, 1 + the slot of its newest entry; 0 = empty
    private int _oldest;
    private int _count;

    public IdempotencyIndex(int capacity, TimeSpan window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _windowMs = (long)window.TotalMilliseconds;
        _slots = new Slot[Math.Min(capacity, InitialSlots)];
        _chains = new int[ChainCountFor(_slots.Length)];
    }

    /// <summary>Serialises check-route-record for one sender partner, so a concurrent resend cannot slip between.</summary>
    public object SyncRoot { get; } = new();

    public int Count => _count;

    /// <summary>Entries the ring has room for now (it grows up to the capacity); for the memory tests.</summary>
    internal int AllocatedSlots => _slots.Length;

    /// <summary>
    /// Finds an id accepted within the window: when it was accepted, and the store's mark its Ack must wait for
    /// (<see cref="DurableMark.None"/> when it is durable already).
    /// </summary>
    public bool TryGet(UInt128 messageId, long nowMs, out Accepted accepted)
    {
        Expire(nowMs);
        int slot = Find(messageId);
        if (slot < 0)
        {
            accepted = default;
            return false;
        }

        ref Slot found = ref _slots[slot];
        accepted = new Accepted(found.AcceptedAtMs, new DurableMark(found.DurableAt), found.Carried);
        return true;
    }

    public void Record(UInt128 messageId, long acceptedAtMs, DurableMark durableAt) => Record(messageId, acceptedAtMs, durableAt, default);

    /// <summary>
    /// Remembers an accepted id and where it went. An id already remembered (recovery: the snapshot, then the log)
    /// keeps its time and takes what is known of where it went, delivered once either source says so.
    /// </summary>
    public void Record(UInt128 messageId, long acceptedAtMs, DurableMark durableAt, CarriedTo carried)
    {
        int existing = Find(messageId);
        if (existing >= 0)
        {
            if (carried.IsKnown)
            {
                ref Slot slot = ref _slots[existing];
                slot.Carried = slot.Carried.Delivered ? carried.WithDelivered() : carried;
            }

            return;
        }

        if (_count == _capacity)
        {
            ForgetOldest();
        }
        else if (_count == _slots.Length)
        {
            Grow();
        }

        int index = Wrap(_oldest + _count);
        int chain = ChainOf(messageId);
        _slots[index] = new Slot
        {
            IdLow = (ulong)messageId,
            IdHigh = (ulong)(messageId >> 64),
            AcceptedAtMs = acceptedAtMs,
            DurableAt = durableAt.Value,
            Carried = carried,
            Next = _chains[chain],
        };
        _chains[chain] = index + 1;
        _count++;
    }

    /// <summary>The recipient acknowledged <paramref name="messageId"/>; no-op when it is no longer remembered. Call under <see cref="SyncRoot"/>.</summary>
    public void MarkDelivered(UInt128 messageId)
    {
        int slot = Find(messageId);
        if (slot >= 0)
        {
            _slots[slot].Carried = _slots[slot].Carried.WithDelivered();
        }
    }

    /// <summary>
    /// Where <paramref name="messageId"/> went, if it is still remembered (within the window and the capacity); no
    /// expiry here, so a check never changes what a resend would find. Call under <see cref="SyncRoot"/>.
    /// </summary>
    public bool TryGetCarried(UInt128 messageId, out CarriedTo carried)
    {
        int slot = Find(messageId);
        carried = slot >= 0 ? _slots[slot].Carried : default;
        return slot >= 0;
    }

    /// <summary>
    /// Forgets the ids older than the window, then hands every remembered one to <paramref name="visitor"/>, oldest
    /// first (the dedup snapshot writes them straight into its file buffer). Returns how many. Call under <see cref="SyncRoot"/>.
    /// </summary>
    public int Visit<TVisitor>(ref TVisitor visitor, long nowMs)
        where TVisitor : IVisitor, allows ref struct
    {
        Expire(nowMs);
        for (int i = 0; i < _count; i++)
        {
            ref Slot slot = ref _slots[Wrap(_oldest + i)];
            visitor.Visit(new UInt128(slot.IdHigh, slot.IdLow), slot.AcceptedAtMs, slot.Carried);
        }

        return _count;
    }

    /// <summary>Forgets the ids older than the window; returns how many are left. Call under <see cref="SyncRoot"/>.</summary>
    public int Expire(long nowMs)
    {
        while (_count > 0 && nowMs - _slots[_oldest].AcceptedAtMs > _windowMs)
        {
            ForgetOldest();
        }

        return _count;
    }

    private int Find(UInt128 messageId)
    {
        ulong low = (ulong)messageId;
        ulong high = (ulong)(messageId >> 64);
        for (int next = _chains[ChainOf(messageId)]; next != 0;)
        {
            ref Slot slot = ref _slots[next - 1];
            if (slot.IdLow == low && slot.IdHigh == high)
            {
                return next - 1;
            }

            next = slot.Next;
        }

        return -1;
    }

    /// <summary>Unlinks the oldest entry from its chain (where it is the last: chains run newest first) and frees its slot.</summary>
    private void ForgetOldest()
    {
        int oldest = _oldest;
        ref Slot gone = ref _slots[oldest];
        ref int link = ref _chains[ChainOf(new UInt128(gone.IdHigh, gone.IdLow))];
        while (link != oldest + 1)
        {
            link = ref _slots[link - 1].Next;
        }

        link = gone.Next;
        gone = default;
        _oldest = Wrap(oldest + 1);
        _count--;
    }

    /// <summary>Doubles the ring (up to the capacity), oldest entry first at slot 0, and relinks every chain.</summary>
    private void Grow()
    {
        var slots = new Slot[(int)Math.Min(2L * _slots.Length, _capacity)];
        for (int i = 0; i < _count; i++)
        {
            slots[i] = _slots[Wrap(_oldest + i)];
        }

        _slots = slots;
        _oldest = 0;
        _chains = new int[ChainCountFor(slots.Length)];
        for (int i = 0; i < _count; i++)
        {
            ref Slot slot = ref slots[i];
            int chain = ChainOf(new UInt128(slot.IdHigh, slot.IdLow));
            slot.Next = _chains[chain];
            _chains[chain] = i + 1;
        }
    }

    private int Wrap(int index) => index >= _slots.Length ? index - _slots.Length : index;

    private int ChainOf(UInt128 messageId)
    {
        Span<UInt128> id = [messageId];
        return (int)(XxHash3.HashToUInt64(MemoryMarshal.AsBytes(id), Seed) & (ulong)(_chains.Length - 1));
    }

    /// <summary>A power of two, at least one chain per slot.</summary>
    private static int ChainCountFor(int slots) => (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)slots), 1u << 30);

    /// <summary>What <see cref="Visit"/> hands the remembered ids to.</summary>
    internal interface IVisitor
    {
        void Visit(UInt128 messageId, long acceptedAtMs, CarriedTo carried);
    }

    /// <summary>When an id was accepted, and the store's mark its Ack waits for.</summary>
    internal readonly record struct Accepted(long AcceptedAtMs, DurableMark DurableAt, CarriedTo Carried = default);

    /// <summary>One remembered id (the id as two halves: a UInt128 field would align the slot to 64 bytes).</summary>
    private struct Slot
    {
        public ulong IdLow;
        public ulong IdHigh;
        public long AcceptedAtMs;
        public ulong DurableAt;
        public CarriedTo Carried;

        /// <summary>1 + the slot of the next older entry in the same chain; 0 ends it.</summary>
        public int Next;
    }
}
