using System.Buffers.Binary;

namespace Relayd.Protocol.Internal;

/// <summary>
/// MediaCredit frames by hand: the relay grants credit every half window of every transfer, so writing one must not
/// allocate a message. Same bytes as <c>new Frame { MediaCredit = ... }.WriteDelimitedTo</c>.
/// </summary>
/// <remarks>
/// <code>
///  varint frame length | tag(13, LEN) varint body length | tag(1, LEN) 16 transfer id | tag(2, VARINT) bytes
/// </code>
/// </remarks>
internal static class MediaCreditWire
{
    public const int FrameMediaCreditField = 13;
    private const int TransferIdField = 1;
    private const int BytesField = 2;

    /// <summary>Largest frame <see cref="Write"/> writes (length prefix included).</summary>
    public const int MaxFrameBytes = 1 + 1 + 1 + 1 + 1 + MediaChunkWire.TransferIdBytes + 1 + 10;

    /// <summary>Writes a whole length-prefixed MediaCredit frame granting <paramref name="bytes"/> more.</summary>
    /// <returns>Bytes written.</returns>
    public static int Write(Span<byte> destination, UInt128 transferId, ulong bytes)
    {
        int body = ProtoWire.LengthDelimitedFieldSize(TransferIdField, MediaChunkWire.TransferIdBytes)
            + ProtoWire.VarintFieldSize(BytesField, bytes);
        int frame = ProtoWire.LengthDelimitedFieldSize(FrameMediaCreditField, body);
        int n = ProtoWire.WriteVarint(destination, (ulong)frame);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], FrameMediaCreditField, body);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], TransferIdField, MediaChunkWire.TransferIdBytes);
        BinaryPrimitives.WriteUInt128BigEndian(destination[n..], transferId);
        n += MediaChunkWire.TransferIdBytes;
        n += ProtoWire.WriteVarintField(destination[n..], BytesField, bytes);
        return n;
    }
}
