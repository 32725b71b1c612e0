using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Interop.Consent;

/// <summary>
/// The consent log's one record type: a batch of changes from one partner, as <c>[u16 partner id length][partner id
/// UTF-8][ConsentUpdate protobuf]</c> (little-endian). The protobuf is the partner's update re-encoded, so replay reads
/// it with the generated parser.
/// </summary>
internal static class ConsentRecord
{
    public const byte Batch = 1;

    public static byte[] Encode(string owner, ConsentUpdate update)
    {
        int ownerBytes = Encoding.UTF8.GetByteCount(owner);
        byte[] payload = new byte[2 + ownerBytes + update.CalculateSize()];
        BinaryPrimitives.WriteUInt16LittleEndian(payload, (ushort)ownerBytes);
        Encoding.UTF8.GetBytes(owner, payload.AsSpan(2));
        update.WriteTo(payload.AsSpan(2 + ownerBytes));
        return payload;
    }

    /// <exception cref="InvalidDataException">The payload is not a consent batch.</exception>
    public static (string Owner, ConsentUpdate Update) Decode(ReadOnlySpan<byte> payload)
    {
        try
        {
            int ownerBytes = BinaryPrimitives.ReadUInt16LittleEndian(payload);
            string owner = Encoding.UTF8.GetString(payload.Slice(2, ownerBytes));
            return (owner, ConsentUpdate.Parser.ParseFrom(payload[(2 + ownerBytes)..]));
        }
        catch (Exception ex) when (ex is ArgumentOutOfRangeException or Google.Protobuf.InvalidProtocolBufferException)
        {
            throw new InvalidDataException("a consent log record is not a consent batch: " + ex.Message, ex);
        }
    }
}
