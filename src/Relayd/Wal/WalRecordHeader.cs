using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Relayd.Wal;

/// <summary>What <see cref="WalRecordHeader.TryRead"/> found at an offset.</summary>
internal enum WalHeaderStatus
{
    /// <summary>A header whose check matches and whose fields are sane; the payload CRC is still to be checked.</summary>
    Valid,

    /// <summary>16 zero bytes: no record was ever written here (segments are pre-written with zeros).</summary>
    Empty,

    /// <summary>The header check does not match bytes 0..11: a torn or damaged header; its length is not trusted.</summary>
    BadCheck,

    /// <summary>The check matches but type is 0 or flags/reserved are not 0: written by something else.</summary>
    BadFields,

    /// <summary>The check matches but the payload would run past the end of the segment.</summary>
    BadLength,
}

/// <summary>
/// The on-disk record layout, defined here and nowhere else. All integers are little-endian; every record starts at
/// an 8-byte aligned offset of its segment and never spans two segments.
/// <code>
///  offset 0        4      5       6          8              12             16
///         +--------+------+-------+----------+--------------+--------------+=====================+=========+
///         | length | type | flags | reserved | payload crc  | header check | payload (length B)  | 0 pad   |
///         |  u32   |  u8  |  u8=0 |  u16=0   |     u32      |     u32      |                     | to 8 B  |
///         +--------+------+-------+----------+--------------+--------------+=====================+=========+
///  payload crc  = CRC-32C over the type byte followed by the payload
///  header check = CRC-32C over header bytes 0..11 (length, type, flags, reserved, payload crc)
/// </code>
/// Type 0 is never written, so zeroed space reads as "no record". The header check is verified before the length is
/// trusted, so a torn header cannot send a reader past the end of the segment.
/// </summary>
internal static class WalRecordHeader
{
    /// <summary>Header bytes before the payload.</summary>
    public const int Size = 16;

    /// <summary>Every record (header + payload + padding) is a multiple of this, so headers stay aligned.</summary>
    public const int Alignment = 8;

    private const int LengthOffset = 0;
    private const int TypeOffset = 4;
    private const int FlagsOffset = 5;
    private const int ReservedOffset = 6;
    private const int CrcOffset = 8;
    private const int CheckOffset = 12;

    /// <summary>Bytes the record occupies in its segment: header, payload and padding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int RecordSize(int payloadLength) => Size + (int)Align(payloadLength);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Align(long bytes) => (bytes + (Alignment - 1)) & ~(long)(Alignment - 1);

    /// <summary>The payload checksum: CRC-32C over the type byte, then the payload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint PayloadCrc(byte type, ReadOnlySpan<byte> payload) =>
        Crc32C.Finish(Crc32C.Append(Crc32C.Append(Crc32C.Seed, type), payload));

    /// <summary>Writes the 16 header bytes at the start of <paramref name="record"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(Span<byte> record, int payloadLength, byte type, uint payloadCrc)
    {
        Span<byte> header = record[..Size];
        BinaryPrimitives.WriteUInt32LittleEndian(header[LengthOffset..], (uint)payloadLength);
        header[TypeOffset] = type;
        header[FlagsOffset] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(header[ReservedOffset..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[CrcOffset..], payloadCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(header[CheckOffset..], Crc32C.Compute(header[..CheckOffset]));
    }

    /// <summary>
    /// Reads and checks the 16 header bytes at the start of <paramref name="source"/>. <paramref name="maxPayloadLength"/>
    /// is what is left of the segment after the header; a longer payload is <see cref="WalHeaderStatus.BadLength"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static WalHeaderStatus TryRead(ReadOnlySpan<byte> source, long maxPayloadLength, out int payloadLength, out byte type, out uint payloadCrc)
    {
        ReadOnlySpan<byte> header = source[..Size];
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header[LengthOffset..]);
        type = header[TypeOffset];
        payloadCrc = BinaryPrimitives.ReadUInt32LittleEndian(header[CrcOffset..]);
        payloadLength = (int)Math.Min(length, int.MaxValue);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header[CheckOffset..]) != Crc32C.Compute(header[..CheckOffset]))
        {
            return !header.ContainsAnyExcept((byte)0) ? WalHeaderStatus.Empty : WalHeaderStatus.BadCheck;
        }

        if (type == 0 || header[FlagsOffset] != 0 || BinaryPrimitives.ReadUInt16LittleEndian(header[ReservedOffset..]) != 0)
        {
            return WalHeaderStatus.BadFields;
        }

        return Align(length) <= maxPayloadLength ? WalHeaderStatus.Valid : WalHeaderStatus.BadLength;
    }
}
