using System.Buffers;
using Relayd.Protocol.Internal;

namespace Relayd.Media;

/// <summary>
/// Cut-through of one transfer to a connected recipient: the sender's read loop copies each chunk out of its input
/// pipe into a buffer here, and the recipient session's writer sends the buffer and hands it back. Owned by one
/// recipient session and reused for every transfer it forwards.
/// </summary>
/// <remarks>
/// Memory: credit keeps the sender at most one window ahead of what the writer has sent, so the queue holds at most
/// a window of data. Buffers circulate between the queue and a free list, so a steady transfer allocates nothing per
/// chunk; the free list is trimmed when the transfer ends. Each buffer keeps room for the frame header in front of
/// its data: the writer puts the header there and sends header and data in one write (one TLS record sequence).
/// </remarks>
internal sealed class MediaForwardQueue
{
    /// <summary>Data bytes per buffer, and so per forwarded MediaChunk (the same chunk size as streaming from the spool).</summary>
    public const int DataBytes = MediaRouter.DeliveryChunkBytes;

    private const int BufferBytes = MediaChunkWire.MaxHeaderBytes + DataBytes;

    // Buffers kept for the next transfer; beyond these, a finished transfer's buffers go to the GC.
    private const int KeptBuffers = 4;

    private readonly Lock _lock = new();
    private readonly Stack<byte[]> _free = new();
    private Slot[] _ring = new Slot[16];
    private int _head;
    private int _count;

    /// <summary>The transfer being forwarded (its id goes into every frame header).</summary>
    public UInt128 TransferId { get; private set; }

    /// <summary>Starts forwarding a transfer (the queue is empty).</summary>
    public void Begin(UInt128 transferId) => TransferId = transferId;

    /// <summary>
    /// Copies a chunk the sender's read loop holds (a slice of its input pipe) into the queue. Called under the
    /// transfer's lock, in offset order; tops up the newest buffer when the writer has not taken it yet.
    /// </summary>
    public void Append(long offset, in ReadOnlySequence<byte> data)
    {
        ReadOnlySequence<byte> rest = data;
        lock (_lock)
        {
            if (_count > 0)
            {
                ref Slot tail = ref _ring[(_head + _count - 1) % _ring.Length];
                if (tail.Offset + tail.Length == offset && tail.Length < DataBytes)
                {
                    int n = (int)Math.Min(DataBytes - tail.Length, rest.Length);
                    rest.Slice(0, n).CopyTo(tail.Buffer.AsSpan(MediaChunkWire.MaxHeaderBytes + tail.Length));
                    tail.Length += n;
                    offset += n;
                    rest = rest.Slice(n);
                }
            }

            while (!rest.IsEmpty)
            {
                byte[] buffer = _free.Count > 0 ? _free.Pop() : GC.AllocateUninitializedArray<byte>(BufferBytes);
                int n = (int)Math.Min(DataBytes, rest.Length);
                rest.Slice(0, n).CopyTo(buffer.AsSpan(MediaChunkWire.MaxHeaderBytes));
                Enqueue(new Slot { Buffer = buffer, Offset = offset, Length = n });
                offset += n;
                rest = rest.Slice(n);
            }
        }
    }

    /// <summary>
    /// Takes the oldest buffer as a complete MediaChunk frame (header written in front of the data). The writer sends
    /// <see cref="ForwardedChunk.Frame"/> and then calls <see cref="Return"/>.
    /// </summary>
    public bool TryTake(out ForwardedChunk chunk)
    {
        Slot slot;
        lock (_lock)
        {
            if (_count == 0)
            {
                chunk = default;
                return false;
            }

            slot = _ring[_head];
            _ring[_head] = default;
            _head = (_head + 1) % _ring.Length;
            _count--;
        }

        Span<byte> header = stackalloc byte[MediaChunkWire.MaxHeaderBytes];
        int headerBytes = MediaChunkWire.WriteHeader(header, TransferId, (ulong)slot.Offset, slot.Length);
        int start = MediaChunkWire.MaxHeaderBytes - headerBytes;
        header[..headerBytes].CopyTo(slot.Buffer.AsSpan(start));
        chunk = new ForwardedChunk(slot.Buffer, start, headerBytes + slot.Length, slot.Offset + slot.Length);
        return true;
    }

    /// <summary>Gives a sent buffer back for the next chunk.</summary>
    public void Return(in ForwardedChunk chunk)
    {
        lock (_lock)
        {
            _free.Push(chunk.Buffer);
        }
    }

    /// <summary>Drops what is still queued (the transfer ended or forwarding stopped) and trims the free list.</summary>
    public void Reset()
    {
        lock (_lock)
        {
            while (_count > 0)
            {
                _free.Push(_ring[_head].Buffer);
                _ring[_head] = default;
                _head = (_head + 1) % _ring.Length;
                _count--;
            }

            _head = 0;
            while (_free.Count > KeptBuffers)
            {
                _free.Pop();
            }
        }
    }

    private void Enqueue(Slot slot)
    {
        if (_count == _ring.Length)
        {
            // More in flight than ever before (a larger window): grow once, keeping order.
            var grown = new Slot[_ring.Length * 2];
            for (int i = 0; i < _count; i++)
            {
                grown[i] = _ring[(_head + i) % _ring.Length];
            }

            _ring = grown;
            _head = 0;
        }

        _ring[(_head + _count) % _ring.Length] = slot;
        _count++;
    }

    private struct Slot
    {
        public byte[] Buffer;
        public long Offset;
        public int Length;
    }
}

/// <summary>A MediaChunk frame ready to send: <see cref="Frame"/> is header and data; <see cref="End"/> the blob offset after it.</summary>
internal readonly struct ForwardedChunk(byte[] buffer, int start, int length, long end)
{
    public byte[] Buffer { get; } = buffer;

    public ReadOnlyMemory<byte> Frame => Buffer.AsMemory(start, length);

    public long End { get; } = end;
}
