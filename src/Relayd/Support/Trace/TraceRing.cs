namespace Relayd.Support.Trace;

/// <summary>
/// A bounded multi-producer, single-consumer queue of <see cref="TraceEntry"/> values (Vyukov's bounded queue): the
/// data path's threads add with one compare-and-swap and no lock, the trace's writer thread takes. Nothing is
/// allocated after construction; when full, <see cref="TryAdd"/> says so and the caller counts the drop.
/// </summary>
internal sealed class TraceRing
{
    private readonly Cell[] _cells;
    private readonly long _mask;
    private PaddedPosition _addAt;  // the producers' (one compare-and-swap each) ...
    private PaddedPosition _takeAt; // ... and the one consumer's, on cache lines of their own (no false sharing)

    public TraceRing(int capacity)
    {
        int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity, 2));
        _cells = new Cell[size];
        _mask = size - 1;
        for (int i = 0; i < size; i++)
        {
            _cells[i].Sequence = i;
        }
    }

    public int Capacity => _cells.Length;

    /// <summary>Adds a copy of <paramref name="entry"/>; false when the ring is full (the writer is behind).</summary>
    public bool TryAdd(in TraceEntry entry)
    {
        long at = Volatile.Read(ref _addAt.Value);
        while (true)
        {
            ref Cell cell = ref _cells[at & _mask];
            long sequence = Volatile.Read(ref cell.Sequence);
            long difference = sequence - at;
            if (difference == 0)
            {
                if (Interlocked.CompareExchange(ref _addAt.Value, at + 1, at) == at)
                {
                    cell.Entry = entry;
                    Volatile.Write(ref cell.Sequence, at + 1);
                    return true;
                }

                at = Volatile.Read(ref _addAt.Value);
            }
            else if (difference < 0)
            {
                return false;
            }
            else
            {
                at = Volatile.Read(ref _addAt.Value);
            }
        }
    }

    /// <summary>Takes the oldest entry; false when none is ready. One consumer only.</summary>
    public bool TryTake(out TraceEntry entry)
    {
        ref Cell cell = ref _cells[_takeAt.Value & _mask];
        if (Volatile.Read(ref cell.Sequence) != _takeAt.Value + 1)
        {
            entry = default;
            return false;
        }

        entry = cell.Entry;
        cell.Entry = default; // drop the references (partners, detail) it held
        Volatile.Write(ref cell.Sequence, _takeAt.Value + _mask + 1);
        _takeAt.Value++;
        return true;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 128)]
    private struct PaddedPosition
    {
        [System.Runtime.InteropServices.FieldOffset(64)]
        public long Value;
    }

    private struct Cell
    {
        public long Sequence;
        public TraceEntry Entry;
    }
}
