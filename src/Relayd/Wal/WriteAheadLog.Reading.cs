using Microsoft.Win32.SafeHandles;

namespace Relayd.Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>
    /// Reads the durable records from disk in log order, starting at <paramref name="from"/> (a record position, or
    /// the default for the beginning of the log), up to the <see cref="DurablePosition"/> at the time of the call.
    /// Used after <see cref="Open"/> to rebuild state. Allocates a payload array per record. Must not run
    /// concurrently with <see cref="DeleteSegmentsBefore"/> of the segments it reads.
    /// </summary>
    /// <exception cref="WalCorruptionException">No valid record at <paramref name="from"/>, or the disk changed under the log.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="from"/> is in a segment that was deleted.</exception>
    public IEnumerable<WalRecord> ReadAll(WalPosition from = default)
    {
        ulong first = _segments[0].Number;
        if (from != default && from.Segment < first)
        {
            throw new ArgumentOutOfRangeException(nameof(from), from, $"segment {from.Segment} was deleted; the log starts at segment {first}");
        }

        return ReadRecords(from, DurablePosition, buffer: null);
    }

    /// <summary>
    /// As <see cref="ReadAll(WalPosition)"/>, but each record's payload is a view into <paramref name="buffer"/>,
    /// valid only until the enumeration moves on: nothing is allocated per record. For replay loops that use each
    /// payload at once.
    /// </summary>
    public IEnumerable<WalRecord> ReadAll(WalPosition from, WalReadBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ulong first = _segments[0].Number;
        if (from != default && from.Segment < first)
        {
            throw new ArgumentOutOfRangeException(nameof(from), from, $"segment {from.Segment} was deleted; the log starts at segment {first}");
        }

        return ReadRecords(from, DurablePosition, buffer);
    }

    private IEnumerable<WalRecord> ReadRecords(WalPosition from, WalPosition limit, WalReadBuffer? buffer)
    {
        foreach (WalSegment segment in _segments)
        {
            if (segment.Number < from.Segment)
            {
                continue;
            }

            if (segment.Number > limit.Segment)
            {
                yield break;
            }

            var reader = new WalSegmentReader(segment, buffer);
            long offset = segment.Number == from.Segment ? from.Offset : 0;
            long end = segment.Number == limit.Segment ? limit.Offset : segment.Length;
            while (offset < end)
            {
                WalScanner.Check check = WalScanner.Examine(reader, offset);
                if (check.Status == WalScanner.Status.End)
                {
                    break;
                }

                if (check.Status == WalScanner.Status.Damaged)
                {
                    throw new WalCorruptionException(segment.Path, offset, $"no valid record at this position ({check.Describe()})");
                }

                ReadOnlyMemory<byte> payload = buffer is null
                    ? reader.Read(offset + WalRecordHeader.Size, check.PayloadLength).ToArray()
                    : reader.ReadMemory(offset + WalRecordHeader.Size, check.PayloadLength);
                yield return new WalRecord(new WalPosition(segment.Number, (uint)offset), check.Type, payload);
                offset += check.RecordSize;
            }
        }
    }

    /// <summary>
    /// Reads one durable record's payload back from disk into <paramref name="destination"/> (for delivering a backlog
    /// that no longer fits in memory) and checks its CRC. Returns the payload length.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The record is not durable yet, or its segment was deleted.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than the payload.</exception>
    /// <exception cref="WalCorruptionException">There is no valid record at <paramref name="position"/>.</exception>
    public int ReadPayload(WalPosition position, Span<byte> destination)
    {
        WalSegment segment = DurableSegment(position);
        int length = ReadHeader(segment, position.Offset, out byte type, out uint crc);
        if (destination.Length < length)
        {
            throw new ArgumentException($"the record at {position} has a {length}-byte payload; the destination holds {destination.Length}", nameof(destination));
        }

        ReadPayloadBytes(segment, position.Offset, type, crc, destination[..length]);
        return length;
    }

    /// <summary>Reads one durable record's payload back from disk into a new array; see <see cref="ReadPayload(WalPosition, Span{byte})"/>.</summary>
    public byte[] ReadPayload(WalPosition position)
    {
        WalSegment segment = DurableSegment(position);
        int length = ReadHeader(segment, position.Offset, out byte type, out uint crc);
        byte[] payload = new byte[length];
        ReadPayloadBytes(segment, position.Offset, type, crc, payload);
        return payload;
    }

    private WalSegment DurableSegment(WalPosition position)
    {
        if (position >= DurablePosition)
        {
            throw new ArgumentOutOfRangeException(nameof(position), position, $"the record is not durable yet (durable up to {DurablePosition})");
        }

        WalSegment[] segments = _segments;
        ulong index = position.Segment - segments[0].Number;
        return position.Segment >= segments[0].Number && index < (ulong)segments.Length
            ? segments[index]
            : throw new ArgumentOutOfRangeException(nameof(position), position, $"segment {position.Segment} is not part of the log (deleted or never written)");
    }

    private static int ReadHeader(WalSegment segment, uint offset, out byte type, out uint crc)
    {
        if (offset % WalRecordHeader.Alignment != 0 || offset + WalRecordHeader.Size > segment.Length)
        {
            throw new WalCorruptionException(segment.Path, offset, "not a record position (unaligned or past the end of the segment)");
        }

        Span<byte> header = stackalloc byte[WalRecordHeader.Size];
        ReadExactly(segment.Handle, header, offset);
        WalHeaderStatus status = WalRecordHeader.TryRead(header, segment.Length - offset - WalRecordHeader.Size, out int length, out type, out crc);
        return status == WalHeaderStatus.Valid
            ? length
            : throw new WalCorruptionException(segment.Path, offset, $"no valid record at this position (header: {status})");
    }

    private static void ReadPayloadBytes(WalSegment segment, uint offset, byte type, uint crc, Span<byte> payload)
    {
        ReadExactly(segment.Handle, payload, offset + WalRecordHeader.Size);
        uint computed = WalRecordHeader.PayloadCrc(type, payload);
        if (computed != crc)
        {
            throw new WalCorruptionException(segment.Path, offset, $"payload CRC-32C mismatch (stored 0x{crc:x8}, computed 0x{computed:x8})");
        }
    }

    private static void ReadExactly(SafeFileHandle handle, Span<byte> destination, long offset)
    {
        for (int read = 0; read < destination.Length;)
        {
            int n = RandomAccess.Read(handle, destination[read..], offset + read);
            if (n == 0)
            {
                throw new EndOfStreamException($"WAL segment ended at {offset + read}");
            }

            read += n;
        }
    }
}
