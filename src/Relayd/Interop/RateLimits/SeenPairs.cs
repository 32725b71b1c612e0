namespace Relayd.Interop.RateLimits;

/// <summary>
/// The (sender user, recipient user) pairs seen within the last one to two hours, in bounded memory: three blocked
/// Bloom filters used in turn, one for the current hour, one for the previous hour, one cleared for the next. A pair is
/// "seen" when it is in the current or the previous hour's filter; a pair seen again is copied into the current one,
/// so an ongoing conversation never becomes new. Each filter has <see cref="BitsPerPair"/> bits per pair it is sized
/// for; a pair sets <see cref="BitsSet"/> bits within one 512-bit block (one cache line: one miss per lookup).
///
/// Error: only one way. A false positive takes a new pair as seen (a new conversation not counted: a missed spam
/// signal); a seen pair is never taken as new (a Bloom filter has no false negatives), so the filters never cause a
/// refusal. At the sized load the false-positive rate is about 0.1% per filter, 0.2% for both (the figure of
/// <c>SeenPairsTests</c>); past it, the rate grows (at twice the load, about 2% for both). Memory: 3 × pairs × 2 bytes.
/// </summary>
internal sealed class SeenPairs
{
    public const int BitsPerPair = 16;
    public const int BitsSet = 7;

    private const int WordsPerBlock = 8;
    private const int Filters = 3;

    private readonly PagedArray<ulong>[] _filters = new PagedArray<ulong>[Filters];
    private readonly long[] _filterHour = new long[Filters];
    private readonly long _blocks;
    private readonly Lock _rotation = new();
    private long _hour = -1;

    public SeenPairs(int pairsPerHour)
    {
        _blocks = Math.Max(1, (long)pairsPerHour * BitsPerPair / (WordsPerBlock * 64));
        for (int i = 0; i < Filters; i++)
        {
            _filters[i] = new PagedArray<ulong>(_blocks * WordsPerBlock);
            _filterHour[i] = long.MinValue;
        }
    }

    /// <summary>Bytes the three filters take when every page is touched.</summary>
    public long BoundBytes => Filters * _blocks * WordsPerBlock * sizeof(ulong);

    /// <summary>
    /// Whether the pair of 128-bit hash (<paramref name="low"/>, <paramref name="high"/>) was seen in this hour or the
    /// previous one; <paramref name="thisHour"/> when in this hour's (nothing to record).
    /// </summary>
    public bool Seen(ulong low, ulong high, long nowNs, out bool thisHour)
    {
        long hour = HourOf(nowNs);
        long block = BlockOf(low);
        thisHour = FilterOf(hour) is { } current && Contains(current, block, high);
        return thisHour || (FilterOf(hour - 1) is { } previous && Contains(previous, block, high));
    }

    /// <summary>Records the pair in this hour's filter (after what it was admitted for was taken).</summary>
    public void Record(ulong low, ulong high, long nowNs)
    {
        if (FilterOf(HourOf(nowNs)) is { } current)
        {
            Add(current, BlockOf(low), high);
        }
    }

    private long HourOf(long nowNs)
    {
        long hour = nowNs / TokenBucket.NsPerHour;
        if (hour != Volatile.Read(ref _hour))
        {
            Rotate(hour);
        }

        return hour;
    }

    private long BlockOf(ulong low) => (long)(((UInt128)low * (ulong)_blocks) >> 64) * WordsPerBlock;

    private static bool Contains(PagedArray<ulong> filter, long block, ulong bits)
    {
        for (int i = 0; i < BitsSet; i++, bits >>= 9)
        {
            int bit = (int)(bits & 511);
            if ((Volatile.Read(ref filter[block + (bit >> 6)]) & (1UL << bit)) == 0)
            {
                return false;
            }
        }

        return true;
    }

    private static void Add(PagedArray<ulong> filter, long block, ulong bits)
    {
        for (int i = 0; i < BitsSet; i++, bits >>= 9)
        {
            int bit = (int)(bits & 511);
            ref ulong word = ref filter[block + (bit >> 6)];
            if ((Volatile.Read(ref word) & (1UL << bit)) == 0)
            {
                Interlocked.Or(ref word, 1UL << bit);
            }
        }
    }

    /// <summary>The filter holding <paramref name="hour"/>'s pairs; null while it is not ready (a jump over idle hours).</summary>
    private PagedArray<ulong>? FilterOf(long hour)
    {
        int index = (int)(((hour % Filters) + Filters) % Filters);
        return Volatile.Read(ref _filterHour[index]) == hour ? _filters[index] : null;
    }

    /// <summary>
    /// Moves to <paramref name="hour"/>: once an hour, by the first request that sees it. The filter for the next hour
    /// was cleared at the last turn, so this one only clears the one after (two hours old, no longer read); after idle
    /// hours it also clears what is stale.
    /// </summary>
    private void Rotate(long hour)
    {
        lock (_rotation)
        {
            if (Volatile.Read(ref _hour) >= hour)
            {
                return;
            }

            Prepare(hour, keep: true);
            Prepare(hour - 1, keep: true);
            Prepare(hour + 1, keep: false);
            Volatile.Write(ref _hour, hour);
        }
    }

    private void Prepare(long hour, bool keep)
    {
        int index = (int)(((hour % Filters) + Filters) % Filters);
        if (keep && _filterHour[index] == hour)
        {
            return;
        }

        if (hour < 0)
        {
            return;
        }

        _filters[index].Clear();
        Volatile.Write(ref _filterHour[index], hour);
    }
}
