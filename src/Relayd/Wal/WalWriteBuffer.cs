namespace Relayd.Wal;

/// <summary>
/// One of the log's two fixed-size write buffers (never grown: PERFORMANCE.md lesson 7). Appenders reserve space under
/// the log's lock and copy their record in outside it; the log writer takes the whole buffer as one batch once every
/// copy into it has finished. A batch may cover the end of one segment and the start of the next, so it is kept as
/// runs, each contiguous both in the buffer and in one segment file.
/// </summary>
internal sealed class WalWriteBuffer
{
    /// <summary>At most this many segments per batch; only tiny test segments come close.</summary>
    private const int MaxRuns = 16;

    private readonly Run[] _runs = new Run[MaxRuns];
    private int _runCount;
    private int _writers;

    public WalWriteBuffer(int bytes) => Data = GC.AllocateUninitializedArray<byte>(bytes);

    public byte[] Data { get; }

    /// <summary>Bytes reserved so far.</summary>
    public int Used { get; private set; }

    /// <summary>The end position of the last record reserved.</summary>
    public WalPosition End { get; private set; }

    public ReadOnlySpan<Run> Runs => _runs.AsSpan(0, _runCount);

    /// <summary>Reserves <paramref name="size"/> bytes for a record at <paramref name="fileOffset"/> of <paramref name="segment"/>. Call under the log's lock.</summary>
    public bool TryReserve(WalSegment segment, long fileOffset, int size, out int bufferOffset)
    {
        bufferOffset = Used;
        if (Used + size > Data.Length)
        {
            return false;
        }

        if (_runCount == 0 || _runs[_runCount - 1].Segment != segment)
        {
            if (_runCount == MaxRuns)
            {
                return false;
            }

            _runs[_runCount++] = new Run { Segment = segment, FileOffset = fileOffset, Start = Used };
        }

        _runs[_runCount - 1].Length += size;
        Used += size;
        End = new WalPosition(segment.Number, (uint)(fileOffset + size));
        Interlocked.Increment(ref _writers);
        return true;
    }

    /// <summary>An appender finished copying its record in.</summary>
    public void Release() => Interlocked.Decrement(ref _writers);

    /// <summary>Waits for appenders still copying into this buffer (a memcpy each, so spinning is right).</summary>
    public void WaitForWriters()
    {
        SpinWait spin = default;
        while (Volatile.Read(ref _writers) != 0)
        {
            spin.SpinOnce();
        }
    }

    public void Reset()
    {
        Array.Clear(_runs, 0, _runCount);
        _runCount = 0;
        Used = 0;
    }

    /// <summary>Bytes [Start, Start + Length) of the buffer go to [FileOffset, FileOffset + Length) of Segment.</summary>
    internal struct Run
    {
        public WalSegment Segment;
        public long FileOffset;
        public int Start;
        public int Length;
    }
}
