namespace Relayd.Storage;

/// <summary>
/// How many unsettled envelopes each log segment holds, so retention knows which segments may go. Lock-free: a ring
/// of counters indexed by segment number. If more than <see cref="Slots"/> segments were live at once, two would
/// share a counter; that only ever keeps a segment longer, never deletes one early.
/// </summary>
internal sealed class SegmentUsage
{
    private const int Slots = 1 << 16; // 256 KiB of counters; 65,536 live segments are 4 TiB at the default segment size
    private readonly int[] _live = new int[Slots];

    public void Add(ulong segment) => Interlocked.Increment(ref _live[segment % Slots]);

    public void Remove(ulong segment) => Interlocked.Decrement(ref _live[segment % Slots]);

    /// <summary>The lowest segment in [<paramref name="first"/>, <paramref name="last"/>] still holding an unsettled envelope, else <paramref name="last"/>.</summary>
    public ulong LowestLive(ulong first, ulong last)
    {
        for (ulong segment = first; segment < last && segment - first < Slots; segment++)
        {
            if (Volatile.Read(ref _live[segment % Slots]) > 0)
            {
                return segment;
            }
        }

        return last;
    }
}
