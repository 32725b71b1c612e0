using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Relayd.Wal;

/// <summary>
/// One of the log's two fixed-size write buffers (never grown: PERFORMANCE.md lesson 7). Appenders reserve space under
/// the log's lock and copy their record in outside it; the log writer takes the whole buffer as one batch once every
/// copy into it has finished. A batch may cover the end of one segment and the start of the next, so it is kept as
/// runs, each contiguous both in the buffer and in one segment file.
/// </summary>
/// <remarks>
/// Every run is laid out so the writer can send it as whole pages from page-aligned memory, which is what an
/// O_DIRECT write needs (<see cref="WalSegment.WriteHandle"/>): a run starts at a page boundary of the buffer and of
/// its file, and a batch that starts in the middle of a page carries that page's earlier bytes first (its prefix,
/// copied from the previous batch by <see cref="CopyPrefixFrom"/>, or read from disk when the log opens). The writer
/// zero-pads each run to its page end in the buffer (<see cref="PadRun"/>); one spare page after the capacity holds
/// the last run's padding.
/// </remarks>
internal sealed class WalWriteBuffer
{
    public const int PageBytes = 4096;

    /// <summary>At most this many segments per batch; only tiny test segments come close.</summary>
    private const int MaxRuns = 16;

    private readonly Run[] _runs = new Run[MaxRuns];
    private readonly byte[] _memory; // pinned, so the page-aligned start found once stays aligned
    private readonly int _origin; // index in _memory of the buffer's first (page-aligned) byte
    private readonly int _capacity; // bytes for the prefix, the records and the page alignment of later runs
    private int _runCount;
    private int _writers;
    private int _cursor; // where the next reservation may start
    private bool _prefixOnly; // the first run holds only the prefix so far
    private WalSegment? _prefixSegment; // where the prefix comes from (set by Begin, so the writer can read it without the lock)
    private long _prefixFileOffset;

    /// <param name="bytes">Room for records; any record of up to this many bytes fits in an empty buffer.</param>
    public unsafe WalWriteBuffer(int bytes)
    {
        // One page for the prefix, the records rounded up to pages, then one page for the last run's padding and
        // one of slack to find an aligned start in.
        _capacity = PageBytes + AlignUp(bytes);
        _memory = GC.AllocateUninitializedArray<byte>(_capacity + 2 * PageBytes, pinned: true);
        nint address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_memory));
        _origin = (int)(AlignUp(address) - address);
    }

    /// <summary>Record bytes reserved so far (the prefix and the padding are not counted).</summary>
    public int RecordBytes { get; private set; }

    /// <summary>The end position of the last record reserved.</summary>
    public WalPosition End { get; private set; }

    /// <summary>How many bytes of the first page precede the first record (see <see cref="Begin"/>).</summary>
    public int PrefixBytes { get; private set; }

    public ReadOnlySpan<Run> Runs => _runs.AsSpan(0, _runCount);

    /// <summary>Bytes [<paramref name="offset"/>, +<paramref name="length"/>) of the buffer.</summary>
    public Span<byte> Span(int offset, int length) => _memory.AsSpan(_origin + offset, length);

    /// <summary>
    /// Makes the empty buffer ready for records from <paramref name="fileOffset"/> of <paramref name="segment"/> on:
    /// when that is inside a page, the page's earlier bytes take the buffer's first bytes (the prefix), to be filled
    /// in before the batch is written. Call under the log's lock.
    /// </summary>
    public void Begin(WalSegment segment, long fileOffset)
    {
        Debug.Assert(_runCount == 0 && RecordBytes == 0, "Begin on a buffer that is not empty");
        int prefix = (int)(fileOffset & (PageBytes - 1));
        PrefixBytes = prefix;
        _cursor = prefix;
        _prefixOnly = prefix > 0;
        _prefixSegment = prefix > 0 ? segment : null;
        _prefixFileOffset = fileOffset - prefix;
        if (prefix > 0)
        {
            _runs[0] = new Run { Segment = segment, FileOffset = fileOffset - prefix, Start = 0, Length = prefix };
            _runCount = 1;
        }
    }

    /// <summary>
    /// Copies the last partial page of <paramref name="previous"/>, the batch that ended where this buffer begins, into
    /// this buffer's prefix. Called by the log writer once <paramref name="previous"/>'s appenders have finished; the
    /// prefix bytes are never touched by appenders, so this may run while this buffer fills.
    /// </summary>
    /// <exception cref="InvalidOperationException">The two buffers do not meet (a bug: writing would destroy records).</exception>
    public void CopyPrefixFrom(WalWriteBuffer previous)
    {
        if (PrefixBytes == 0)
        {
            return;
        }

        ReadOnlySpan<Run> runs = previous.Runs;
        Run last = runs.Length > 0 ? runs[^1] : default;
        long end = last.FileOffset + last.Length;
        if (runs.Length == 0 || last.Segment != _prefixSegment || end - PrefixBytes != _prefixFileOffset)
        {
            throw new InvalidOperationException($"the write buffer's {PrefixBytes}-byte prefix does not meet the previous batch, which ends at {end} of {last.Segment?.FileName}");
        }

        previous.Span(last.Start + last.Length - PrefixBytes, PrefixBytes).CopyTo(Span(0, PrefixBytes));
    }

    /// <summary>Reserves <paramref name="size"/> bytes for a record at <paramref name="fileOffset"/> of <paramref name="segment"/>. Call under the log's lock.</summary>
    public bool TryReserve(WalSegment segment, long fileOffset, int size, out int bufferOffset)
    {
        bufferOffset = 0;
        if (_runCount == 0 || _runs[_runCount - 1].Segment != segment)
        {
            if (_prefixOnly)
            {
                // The records start in the next segment: the previous one's last page needs no rewrite. Its prefix
                // bytes stay where they are (the writer may be copying them in right now) and go unused.
                _runCount = 0;
            }

            if (_runCount == MaxRuns)
            {
                return false;
            }

            Debug.Assert((fileOffset & (PageBytes - 1)) == 0, "a new run starts inside a page");
            int start = AlignUp(_cursor);
            if (start + size > _capacity)
            {
                return false;
            }

            _runs[_runCount++] = new Run { Segment = segment, FileOffset = fileOffset, Start = start };
            _cursor = start;
        }
        else if (_cursor + size > _capacity)
        {
            return false;
        }

        _prefixOnly = false;
        bufferOffset = _cursor;
        _runs[_runCount - 1].Length += size;
        _cursor += size;
        RecordBytes += size;
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

    /// <summary>
    /// Zeros <paramref name="run"/>'s bytes from its end to its page end, which is what the pre-zeroed file holds
    /// there, and returns the run as whole pages (never past <paramref name="fileLength"/>).
    /// </summary>
    public ReadOnlySpan<byte> PadRun(in Run run, long fileLength)
    {
        long end = run.FileOffset + run.Length;
        int padding = (int)(Math.Min(AlignUp(end), fileLength) - end);
        Span(run.Start + run.Length, padding).Clear();
        return Span(run.Start, run.Length + padding);
    }

    public void Reset()
    {
        Array.Clear(_runs, 0, _runCount);
        _runCount = 0;
        _cursor = 0;
        _prefixOnly = false;
        _prefixSegment = null;
        PrefixBytes = 0;
        RecordBytes = 0;
    }

    private static int AlignUp(int value) => (value + PageBytes - 1) & ~(PageBytes - 1);

    private static long AlignUp(long value) => (value + PageBytes - 1) & ~(PageBytes - 1L);

    /// <summary>Bytes [Start, Start + Length) of the buffer go to [FileOffset, FileOffset + Length) of Segment.</summary>
    internal struct Run
    {
        public WalSegment Segment;
        public long FileOffset;
        public int Start;
        public int Length;
    }
}
