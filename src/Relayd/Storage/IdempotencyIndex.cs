using System.Diagnostics;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
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
/// table of chain heads indexes it. 40 bytes per entry and 4 to 8 bytes of chain heads per entry: about 44 bytes per
/// id at the 1 M default (42 MiB per sender partner), where a <c>Dictionary</c> beside a <c>Queue</c> took 122.5 (and
/// this ring 56 while an entry kept its Ack's durable mark: a resend now waits for the store's newest append instead).
/// </para>
/// <para>
/// The ring spans the whole capacity but is allocated a chunk (4,096 entries, 160 KiB) at a time, as the newest entry
/// enters it, and a chunk goes back when the oldest entry leaves it: a quiet partner costs little, memory follows the
/// ids remembered, and no entry ever moves. (It used to double one array and relink every chain under the dedup lock:
/// at 512 K entries that held a sender partner's envelopes up for 100-170 ms, most of the open-loop p99.) The chain
/// heads double while there are few entries and jump to their full size at 65,536, so relinking costs at most that.
/// A full index inserts and forgets without allocating.
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
    /// <summary>Entries per ring chunk (at most the capacity, rounded up to a power of two): 160 KiB.</summary>
    internal const int ChunkSlots = 1 << 12;

    // Chain heads double while the index holds fewer entries than this, then jump to their size for the whole capacity.
    private const int RelinkLimit = 1 << 16;

    private static readonly long Seed = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(sizeof(long)));

    private readonly int _capacity;
    private readonly long _windowMs;
    private readonly int _chunkShift;
    private readonly int _chunkMask;
    private readonly Slot[]?[] _chunks; // the ring of _capacity positions; a chunk is null while no entry is in it
    private Slot[]? _spare; // one released chunk (all default), so that a ring cycling below its capacity does not allocate
    private int[] _chains; // per bucket, 1 + the position of its newest entry; 0 = empty
    private int _oldest; // position of the oldest of _count entries
    private int _count;
    private int _allocatedChunks;

    public IdempotencyIndex(int capacity, TimeSpan window)
        : this(capacity, window, ChunkSlots)
    {
    }

    /// <summary>For tests: a smaller chunk, so that small capacities take and release chunks.</summary>
    internal IdempotencyIndex(int capacity, TimeSpan window, int chunkSlots)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSlots, 1);
        _capacity = capacity;
        _windowMs = (long)window.TotalMilliseconds;
        int chunk = (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)chunkSlots), System.Numerics.BitOperations.RoundUpToPowerOf2((uint)capacity));
        _chunkShift = System.Numerics.BitOperations.Log2((uint)chunk);
        _chunkMask = chunk - 1;
        _chunks = new Slot[]?[(capacity + chunk - 1) >> _chunkShift];
        _chains = new int[ChainCountFor(Math.Min(capacity, chunk))];
    }

    /// <summary>Serialises check-route-record for one sender partner, so a concurrent resend cannot slip between.</summary>
    public object SyncRoot { get; } = new();

    public int Count => _count;

    /// <summary>Ring entries allocated now (whole chunks, as the remembered ids need them); for the memory tests.</summary>
    internal int AllocatedSlots => _allocatedChunks << _chunkShift;

    /// <summary>
    /// An id with its chain hash, computed once per envelope (<see cref="Probe(UInt128)"/>) for the lookup, the insert
    /// and <see cref="Prefetch"/>.
    /// </summary>
    internal readonly struct IdProbe(UInt128 messageId, ulong hash)
    {
        public UInt128 MessageId { get; } = messageId;

        public ulong Hash { get; } = hash;
    }

    /// <summary>The id's chain hash (seeded xxHash3); valid for every index of the process, whatever its size.</summary>
    public static IdProbe Probe(UInt128 messageId)
    {
        Span<UInt128> id = [messageId];
        return new IdProbe(messageId, XxHash3.HashToUInt64(MemoryMarshal.AsBytes(id), Seed));
    }

    /// <summary>
    /// Asks the CPU to fetch the id's chain head, without the lock: the route step calls it before the admission rules
    /// run, so the lookup after them does not wait for memory. The heads of a full index are 4 MiB read at random
    /// (perf: the head load was three quarters of the lookup's time). A racy read of the table is harmless: a prefetch
    /// never faults and changes nothing.
    /// </summary>
    public unsafe void Prefetch(in IdProbe probe)
    {
        if (Sse.IsSupported)
        {
            int[] chains = _chains;
            Sse.Prefetch0(Unsafe.AsPointer(ref chains[(int)(probe.Hash & (ulong)(chains.Length - 1))]));
        }
    }

    /// <summary>Finds an id accepted within the window: when it was accepted, and where it went.</summary>
    public bool TryGet(UInt128 messageId, long nowMs, out Accepted accepted) => TryGet(Probe(messageId), nowMs, out accepted);

    /// <inheritdoc cref="TryGet(UInt128, long, out Accepted)"/>
    public bool TryGet(in IdProbe probe, long nowMs, out Accepted accepted)
    {
        Expire(nowMs);
        int slot = Find(probe);
        if (slot < 0)
        {
            accepted = default;
            return false;
        }

        ref Slot found = ref At(slot);
        accepted = new Accepted(found.AcceptedAtMs, found.Carried);
        return true;
    }

    public void Record(UInt128 messageId, long acceptedAtMs) => Record(messageId, acceptedAtMs, default);

    /// <summary>
    /// Remembers an accepted id and where it went. An id already remembered (recovery: the snapshot, then the log)
    /// keeps its time and takes what is known of where it went, delivered once either source says so.
    /// </summary>
    public void Record(UInt128 messageId, long acceptedAtMs, CarriedTo carried) => Record(Probe(messageId), acceptedAtMs, carried);

    /// <inheritdoc cref="Record(UInt128, long, CarriedTo)"/>
    public void Record(in IdProbe probe, long acceptedAtMs, CarriedTo carried)
    {
        UInt128 messageId = probe.MessageId;
        int existing = Find(probe);
        if (existing >= 0)
        {
            if (carried.IsKnown)
            {
                ref Slot slot = ref At(existing);
                slot.Carried = slot.Carried.Delivered ? carried.WithDelivered() : carried;
            }

            return;
        }

        if (_count == _capacity)
        {
            ForgetOldest();
        }
        else if (_count == _chains.Length && _chains.Length < ChainCountFor(_capacity))
        {
            GrowChains();
        }

        int index = Wrap(_oldest + _count);
        int chain = ChainOf(probe.Hash);
        Slot[] chunk = _chunks[index >> _chunkShift] ?? TakeChunk(index >> _chunkShift);
        ref Slot added = ref chunk[index & _chunkMask];
        added = new Slot
        {
            IdLow = (ulong)messageId,
            IdHigh = (ulong)(messageId >> 64),
            AcceptedAtMs = acceptedAtMs,
        };
        added.Carried = carried;
        added.Next = _chains[chain];
        _chains[chain] = index + 1;
        _count++;
    }

    /// <summary>The recipient acknowledged <paramref name="messageId"/>; no-op when it is no longer remembered. Call under <see cref="SyncRoot"/>.</summary>
    public void MarkDelivered(UInt128 messageId) => MarkDelivered(Probe(messageId));

    /// <inheritdoc cref="MarkDelivered(UInt128)"/>
    public void MarkDelivered(in IdProbe probe)
    {
        int slot = Find(probe);
        if (slot >= 0)
        {
            ref Slot found = ref At(slot);
            found.Carried = found.Carried.WithDelivered();
        }
    }

    /// <summary>
    /// Where <paramref name="messageId"/> went, if it is still remembered (within the window and the capacity); no
    /// expiry here, so a check never changes what a resend would find. Call under <see cref="SyncRoot"/>.
    /// </summary>
    public bool TryGetCarried(UInt128 messageId, out CarriedTo carried)
    {
        int slot = Find(Probe(messageId));
        carried = slot >= 0 ? At(slot).Carried : default;
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
            ref Slot slot = ref At(Wrap(_oldest + i));
            visitor.Visit(new UInt128(slot.IdHigh, slot.IdLow), slot.AcceptedAtMs, slot.Carried);
        }

        return _count;
    }

    /// <summary>Forgets the ids older than the window; returns how many are left. Call under <see cref="SyncRoot"/>.</summary>
    public int Expire(long nowMs)
    {
        while (_count > 0 && nowMs - At(_oldest).AcceptedAtMs > _windowMs)
        {
            ForgetOldest();
        }

        return _count;
    }

    private int Find(in IdProbe probe)
    {
        ulong low = (ulong)probe.MessageId;
        ulong high = (ulong)(probe.MessageId >> 64);
        for (int next = _chains[ChainOf(probe.Hash)]; next != 0;)
        {
            ref Slot slot = ref At(next - 1);
            if (slot.IdLow == low && slot.IdHigh == high)
            {
                return next - 1;
            }

            next = slot.Next;
        }

        return -1;
    }

    /// <summary>
    /// Unlinks the oldest entry from its chain (where it is the last: chains run newest first) and frees its position;
    /// its chunk goes back once no remembered entry is left in it.
    /// </summary>
    private void ForgetOldest()
    {
        int oldest = _oldest;
        ref Slot gone = ref At(oldest);
        ref int head = ref _chains[ChainOf(new UInt128(gone.IdHigh, gone.IdLow))];
        if (head == oldest + 1)
        {
            head = gone.Next;
        }
        else
        {
            int before = head - 1;
            while (At(before).Next != oldest + 1)
            {
                before = At(before).Next - 1;
            }

            At(before).Next = gone.Next;
        }

        gone = default;
        _oldest = Wrap(oldest + 1);
        _count--;

        int chunk = oldest >> _chunkShift;
        if (_oldest >> _chunkShift != chunk)
        {
            // The oldest left this chunk. Going on from the new oldest, the ring reaches the chunk's first position
            // after `ahead` entries: the newest are in it only if there are more than that.
            int ahead = (chunk << _chunkShift) - _oldest;
            if (ahead < 0)
            {
                ahead += _capacity;
            }

            if (_count <= ahead)
            {
                ReleaseChunk(chunk);
            }
        }
    }

    private Slot[] TakeChunk(int chunk)
    {
        Slot[] slots = _spare ?? new Slot[_chunkMask + 1];
        _spare = null;
        _chunks[chunk] = slots;
        _allocatedChunks++;
        return slots;
    }

    private void ReleaseChunk(int chunk)
    {
        _spare ??= _chunks[chunk]; // every entry in it was set to default when it was forgotten
        _chunks[chunk] = null;
        _allocatedChunks--;
    }

    /// <summary>
    /// More chain heads: doubled while the index holds fewer than <see cref="RelinkLimit"/> entries, else all the
    /// capacity needs; every remembered entry is relinked (so at most <see cref="RelinkLimit"/> of them, once).
    /// </summary>
    private void GrowChains()
    {
        int full = ChainCountFor(_capacity);
        _chains = new int[_count < RelinkLimit ? Math.Min(2 * _chains.Length, full) : full];
        for (int i = 0; i < _count; i++)
        {
            int position = Wrap(_oldest + i);
            ref Slot slot = ref At(position);
            int chain = ChainOf(new UInt128(slot.IdHigh, slot.IdLow));
            slot.Next = _chains[chain];
            _chains[chain] = position + 1;
        }
    }

    private ref Slot At(int position) => ref _chunks[position >> _chunkShift]![position & _chunkMask];

    private int Wrap(int index) => index >= _capacity ? index - _capacity : index;

    private int ChainOf(UInt128 messageId) => ChainOf(Probe(messageId).Hash);

    private int ChainOf(ulong hash) => (int)(hash & (ulong)(_chains.Length - 1));

    /// <summary>A power of two, at least one chain per slot.</summary>
    private static int ChainCountFor(int slots) => (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)slots), 1u << 30);

    /// <summary>What <see cref="Visit"/> hands the remembered ids to.</summary>
    internal interface IVisitor
    {
        void Visit(UInt128 messageId, long acceptedAtMs, CarriedTo carried);
    }

    /// <summary>When an id was accepted, and where it went.</summary>
    internal readonly record struct Accepted(long AcceptedAtMs, CarriedTo Carried = default);

    /// <summary>
    /// One remembered id, 40 bytes (the id as two halves: a UInt128 field would align the slot to 64 bytes).
    /// <see cref="CarriedTo"/>'s two flags ride in the top bits of the chain link: positions are below 2^27 (the
    /// capacity is at most 100 M), so the link needs no more than 28 bits.
    /// </summary>
    private struct Slot
    {
        private const uint LinkMask = (1u << 30) - 1;

        public ulong IdLow;
        public ulong IdHigh;
        public long AcceptedAtMs;
        private ulong _usersHash;
        private uint _recipientPartnerHash;
        private uint _linkAndFlags;

        /// <summary>1 + the slot of the next older entry in the same chain; 0 ends it.</summary>
        public int Next
        {
            readonly get => (int)(_linkAndFlags & LinkMask);
            set => _linkAndFlags = (_linkAndFlags & ~LinkMask) | (uint)value;
        }

        public CarriedTo Carried
        {
            readonly get => new(_recipientPartnerHash, _linkAndFlags >> 30, _usersHash);
            set
            {
                Debug.Assert(value.Flags <= 3, "CarriedTo has two flags");
                (_recipientPartnerHash, _usersHash) = (value.RecipientPartnerHash, value.UsersHash);
                _linkAndFlags = (_linkAndFlags & LinkMask) | (value.Flags << 30);
            }
        }
    }
}
