using Microsoft.Win32.SafeHandles;

namespace Relayd.Wal;

/// <summary>
/// Reads a segment front to back through a window, for recovery, verification and replay (never on the append
/// path). Spans it returns are valid until the next call.
/// </summary>
internal sealed class WalSegmentReader
{
    internal const int WindowBytes = 1024 * 1024; // one read per MiB of backlog: large sequential reads, small enough to keep per reader

    private readonly SafeFileHandle _handle;
    private readonly WalReadBuffer? _shared;
    private byte[] _window;
    private long _windowStart;
    private int _windowLength;

    public WalSegmentReader(WalSegment segment, WalReadBuffer? buffer = null)
    {
        _handle = segment.Handle;
        Length = segment.Length;
        _shared = buffer;
        _window = buffer?.Window ?? [];
    }

    public long Length { get; }

    /// <summary>Bytes [offset, offset + count), which must lie inside the segment.</summary>
    public ReadOnlySpan<byte> Read(long offset, int count) => ReadMemory(offset, count).Span;

    /// <summary>As <see cref="Read"/>, as memory (valid until the next call).</summary>
    public ReadOnlyMemory<byte> ReadMemory(long offset, int count)
    {
        if (offset < _windowStart || offset + count > _windowStart + _windowLength)
        {
            int length = (int)Math.Min(Length - offset, Math.Max(count, WindowBytes));
            if (_window.Length < length)
            {
                _window = new byte[Math.Max(length, WindowBytes)];
                if (_shared is not null)
                {
                    _shared.Window = _window;
                }
            }

            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(_handle, _window.AsSpan(read, length - read), offset + read);
                if (n == 0)
                {
                    throw new EndOfStreamException($"segment ended at {offset + read} bytes, expected {Length}");
                }

                read += n;
            }

            _windowStart = offset;
            _windowLength = length;
        }

        return _window.AsMemory((int)(offset - _windowStart), count);
    }

    /// <summary>The offset of the first non-zero byte at or after <paramref name="from"/>, or -1.</summary>
    public long FindFirstNonZero(long from)
    {
        for (long offset = from; offset < Length;)
        {
            ReadOnlySpan<byte> chunk = Read(offset, (int)Math.Min(WindowBytes, Length - offset));
            int index = chunk.IndexOfAnyExcept((byte)0);
            if (index >= 0)
            {
                return offset + index;
            }

            offset += chunk.Length;
        }

        return -1;
    }

    /// <summary>The offset of the last non-zero byte at or after <paramref name="from"/>, or -1.</summary>
    public long FindLastNonZero(long from)
    {
        long last = -1;
        for (long offset = from; offset < Length;)
        {
            ReadOnlySpan<byte> chunk = Read(offset, (int)Math.Min(WindowBytes, Length - offset));
            int index = chunk.LastIndexOfAnyExcept((byte)0);
            if (index >= 0)
            {
                last = offset + index;
            }

            offset += chunk.Length;
        }

        return last;
    }
}

/// <summary>
/// A read window to reuse across <see cref="WriteAheadLog.ReadAll(WalPosition, WalReadBuffer)"/> calls, so that
/// replaying or re-reading a large log allocates nothing per record or per call. Not thread-safe.
/// </summary>
public sealed class WalReadBuffer
{
    internal byte[] Window { get; set; } = new byte[WalSegmentReader.WindowBytes];
}
