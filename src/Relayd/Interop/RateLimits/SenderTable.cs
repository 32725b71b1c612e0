namespace Relayd.Interop.RateLimits;

/// <summary>
/// The buckets of every tracked sender user, in a fixed-capacity set-associative table: a user's key (its partner and
/// a 64-bit hash of its id) picks one set of <see cref="Ways"/> entries, guarded by one of a fixed number of striped
/// locks, so senders of different sets never contend and nothing is allocated per sender (pages of the table are
/// allocated on first touch, up to the bound). A sender not in its set takes an empty entry, else one whose buckets
/// are all full again (equivalent to a fresh one: nothing is lost), else the one closest to full (more lenient for
/// it, never a false refusal). <see cref="EntryBytes"/> bytes per tracked sender.
/// </summary>
internal sealed class SenderTable
{
    public const int Ways = 8;

    /// <summary>Bytes of one entry: the key, three buckets and the end of a tightening.</summary>
    public const int EntryBytes = 40;

    private const int MaxStripes = 4096;

    private readonly PagedArray<Entry> _entries;
    private readonly Lock[] _stripes;
    private readonly long _sets;
    private long _evictedActive;

    public SenderTable(int capacity)
    {
        _sets = Math.Max(1, (capacity + Ways - 1) / Ways);
        _entries = new PagedArray<Entry>(_sets * Ways);
        // A power of two: the stripe of a set is a mask, not a division, on every envelope.
        _stripes = new Lock[(int)Math.Min(MaxStripes, System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)_sets) >> (IsPow2(_sets) ? 0 : 1))];
        for (int i = 0; i < _stripes.Length; i++)
        {
            _stripes[i] = new Lock();
        }
    }

    /// <summary>Entries the table can hold: its bound.</summary>
    public long Capacity => _sets * Ways;

    /// <summary>Bytes held by the entries allocated so far (at most <see cref="Capacity"/> × <see cref="EntryBytes"/>).</summary>
    public long AllocatedBytes => (long)_entries.AllocatedPages * PagedArray<Entry>.ElementsPerPage * EntryBytes;

    /// <summary>Senders evicted while some bucket of theirs was not yet full: more active senders than <see cref="Capacity"/>.</summary>
    public long EvictedActive => Interlocked.Read(ref _evictedActive);

    /// <summary>The lock of the set <paramref name="key"/> maps to; hold it while using <see cref="Find"/>'s entry.</summary>
    public Lock LockOf(ulong key) => _stripes[SetOf(key) & (_stripes.Length - 1)];

    private static bool IsPow2(long value) => (value & (value - 1)) == 0;

    /// <summary>The entry of <paramref name="key"/>, taken for it when absent (see the class comment). Hold <see cref="LockOf"/>.</summary>
    public ref Entry Find(ulong key, long nowNs)
    {
        key = key == 0 ? 1 : key;
        long first = SetOf(key) * Ways;
        long victim = -1;
        long victimFullAt = long.MaxValue;
        for (long i = first; i < first + Ways; i++)
        {
            ref Entry entry = ref _entries[i];
            if (entry.Key == key)
            {
                return ref entry;
            }

            long fullAt = entry.Key == 0 ? long.MinValue : entry.FullAt;
            if (fullAt < victimFullAt)
            {
                victim = i;
                victimFullAt = fullAt;
            }
        }

        if (victimFullAt > nowNs)
        {
            Interlocked.Increment(ref _evictedActive);
        }

        ref Entry taken = ref _entries[victim];
        taken = new Entry { Key = key };
        return ref taken;
    }

    /// <summary>Whether <paramref name="key"/> has an entry now (tests of the bound). Hold <see cref="LockOf"/>.</summary>
    public bool Contains(ulong key)
    {
        key = key == 0 ? 1 : key;
        long first = SetOf(key) * Ways;
        for (long i = first; i < first + Ways; i++)
        {
            if (_entries[i].Key == key)
            {
                return true;
            }
        }

        return false;
    }

    private long SetOf(ulong key) => (long)(((UInt128)key * (ulong)_sets) >> 64);

    /// <summary>One sender user's buckets (see <see cref="TokenBucket"/>; 0 = full).</summary>
    internal struct Entry
    {
        /// <summary>Partner and user hash; 0 = empty.</summary>
        public ulong Key;
        public long Envelopes;
        public long NewConversations;
        public long KeyBundleRequests;

        /// <summary>End of a tightening (<see cref="RateLimiter.TightenSender"/>); at or before now = none.</summary>
        public long TightenedUntil;

        /// <summary>When every bucket is full again and no tightening is left: from then on evicting it loses nothing.</summary>
        public readonly long FullAt => Math.Max(Math.Max(Envelopes, NewConversations), Math.Max(KeyBundleRequests, TightenedUntil));
    }
}
