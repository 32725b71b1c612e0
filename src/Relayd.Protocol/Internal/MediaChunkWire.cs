using System.Buffers;
using System.Buffers.Binary;
using Relayd.Protocol.V1;

namespace Relayd.Protocol.Internal;

/// <summary>
/// MediaChunk frames by hand, in both directions: a chunk is the per-byte frame of a transfer, so neither side
/// materialises a message for it; the data is written after the header and read as a slice of the input.
/// </summary>
/// <remarks>
/// <code>
///  varint frame length | tag(12, LEN) varint body length | tag(1, LEN) 16 transfer id | tag(2, VARINT) offset | tag(3, LEN) varint n | n bytes of data
/// </code>
/// The data is the last field, so a writer puts the header in front of bytes it already holds.
/// </remarks>
internal static class MediaChunkWire
{
    public const int FrameMediaChunkField = 12;
    public const int TransferIdBytes = 16;
    private const int TransferIdField = 1;
    private const int OffsetField = 2;
    private const int DataField = 3;

    /// <summary>Largest header <see cref="WriteHeader"/> writes (length prefix included).</summary>
    public const int MaxHeaderBytes = 5 + 1 + 5 + 2 + TransferIdBytes + 1 + 10 + 1 + 5;

    /// <summary>Writes the frame up to the data; the caller writes <paramref name="dataLength"/> bytes right after it.</summary>
    /// <returns>Bytes written.</returns>
    public static int WriteHeader(Span<byte> destination, UInt128 transferId, ulong offset, int dataLength)
    {
        int body = ProtoWire.LengthDelimitedFieldSize(TransferIdField, TransferIdBytes)
            + ProtoWire.VarintFieldSize(OffsetField, offset)
            + ProtoWire.LengthDelimitedFieldSize(DataField, dataLength);
        int frame = ProtoWire.LengthDelimitedFieldSize(FrameMediaChunkField, body);
        int n = ProtoWire.WriteVarint(destination, (ulong)frame);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], FrameMediaChunkField, body);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], TransferIdField, TransferIdBytes);
        BinaryPrimitives.WriteUInt128BigEndian(destination[n..], transferId);
        n += TransferIdBytes;
        n += ProtoWire.WriteVarintField(destination[n..], OffsetField, offset);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], DataField, dataLength);
        return n;
    }

    /// <summary>
    /// Reads a frame body (without its length prefix) as a MediaChunk. False when the frame is not a MediaChunk;
    /// on true, <paramref name="data"/> is a slice of <paramref name="frame"/>.
    /// </summary>
    /// <exception cref="RelayException">MALFORMED_FRAME: a MediaChunk without a 16-byte transfer id, or broken.</exception>
    public static bool TryRead(in ReadOnlySequence<byte> frame, out UInt128 transferId, out ulong offset, out ReadOnlySequence<byte> data)
    {
        transferId = default;
        offset = 0;
        data = default;
        ReadOnlySpan<byte> first = frame.FirstSpan;
        if (first.IsEmpty || first[0] != (byte)ProtoWire.Tag(FrameMediaChunkField, ProtoWire.WireLengthDelimited))
        {
            return false;
        }

        var reader = new SequenceReader<byte>(frame);
        reader.Advance(1);
        int bodyLength = ProtoWire.ReadLength(ref reader);
        if (bodyLength != reader.Remaining)
        {
            // Another field after the chunk: not the canonical layout, let the generic parser judge it.
            return false;
        }

        // The same rules as the envelope reader (see ProtoWire.ReadTag and CheckKnownField): one reading for every
        // conforming parser, or MALFORMED_FRAME.
        bool haveId = false;
        uint seen = 0;
        while (!reader.End)
        {
            ProtoWire.ReadTag(ref reader, out int field, out int wire);
            switch (field)
            {
                case TransferIdField:
                    ProtoWire.CheckKnownField(field, wire, ProtoWire.WireLengthDelimited, ref seen);
                    if (ProtoWire.ReadLength(ref reader) != TransferIdBytes)
                    {
                        throw ProtoWire.Malformed("media transfer_id must be 16 bytes");
                    }

                    transferId = ReadId(ref reader);
                    haveId = true;
                    break;
                case OffsetField:
                    ProtoWire.CheckKnownField(field, wire, ProtoWire.WireVarint, ref seen);
                    offset = ProtoWire.ReadVarint(ref reader);
                    break;
                case DataField:
                    ProtoWire.CheckKnownField(field, wire, ProtoWire.WireLengthDelimited, ref seen);
                    int length = ProtoWire.ReadLength(ref reader);
                    data = frame.Slice(reader.Position, length);
                    reader.Advance(length);
                    break;
                default:
                    ProtoWire.SkipField(ref reader, wire);
                    break;
            }
        }

        return haveId ? true : throw ProtoWire.Malformed("media chunk without a 16-byte transfer_id");
    }

    private static UInt128 ReadId(ref SequenceReader<byte> reader)
    {
        Span<byte> id = stackalloc byte[TransferIdBytes];
        reader.TryCopyTo(id);
        reader.Advance(TransferIdBytes);
        return BinaryPrimitives.ReadUInt128BigEndian(id);
    }

    /// <summary>Reads a 16-byte transfer id from a parsed message field.</summary>
    /// <exception cref="RelayException">MALFORMED_FRAME when it is not 16 bytes.</exception>
    public static UInt128 ReadTransferId(Google.Protobuf.ByteString id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return id.Length == TransferIdBytes
            ? BinaryPrimitives.ReadUInt128BigEndian(id.Span)
            : throw new RelayException(ErrorCode.MalformedFrame, "media transfer_id must be 16 bytes");
    }

    /// <summary>The 16 bytes of a transfer id, for messages.</summary>
    public static Google.Protobuf.ByteString ToByteString(UInt128 transferId)
    {
        byte[] bytes = new byte[TransferIdBytes];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, transferId);
        return Google.Protobuf.UnsafeByteOperations.UnsafeWrap(bytes);
    }
}
