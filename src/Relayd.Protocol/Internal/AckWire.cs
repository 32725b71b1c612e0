using System.Buffers;
using System.Buffers.Binary;

namespace Relayd.Protocol.Internal;

/// <summary>
/// Ack frames read in place on the client: one arrives for every envelope sent, and parsing each into a Frame, an Ack,
/// a ByteString and its array was a fifth of the client's allocations per message. Written by hand because no served
/// package reads protobuf fields without materialising the message.
/// </summary>
/// <remarks>
/// <code>
///  tag(4, LEN) varint body length | tag(1, LEN) 16 message id | tag(2, VARINT) accepted_at_ms | tag(3, VARINT) duplicate
/// </code>
/// Reads only what every conforming parser reads the same way: the known fields with their own wire types, a 16-byte
/// id, no unknown fields, nothing after the Ack. Anything else is not refused here but left to
/// Google.Protobuf, so this reader can only make the client faster, never read a frame differently.
/// </remarks>
internal static class AckWire
{
    public const int FrameAckField = 4;
    private const int MessageIdField = 1;
    private const int AcceptedAtField = 2;
    private const int DuplicateField = 3;
    private const int MessageIdBytes = 16;

    /// <summary>
    /// Reads a frame body (without its length prefix) as an Ack. False when it is not an Ack in the layout above, for
    /// the generic parser to judge; never throws.
    /// </summary>
    public static bool TryRead(in ReadOnlySequence<byte> frame, out UInt128 messageId, out long acceptedAtMs, out bool duplicate)
    {
        messageId = default;
        acceptedAtMs = 0;
        duplicate = false;
        ReadOnlySpan<byte> first = frame.FirstSpan;
        if (first.IsEmpty || first[0] != (byte)ProtoWire.Tag(FrameAckField, ProtoWire.WireLengthDelimited))
        {
            return false;
        }

        try
        {
            var reader = new SequenceReader<byte>(frame);
            reader.Advance(1);
            if (ProtoWire.ReadLength(ref reader) != reader.Remaining)
            {
                return false; // another Frame field after the Ack
            }

            uint seen = 0;
            while (!reader.End)
            {
                ProtoWire.ReadTag(ref reader, out int field, out int wire);
                if (field is < MessageIdField or > DuplicateField)
                {
                    return false; // an unknown field: not the layout the relay writes, so the generic parser decides
                }

                // A repeated field overwrites the earlier value here, as it does in stock parsers (last one wins).

                seen |= 1u << field;
                switch (field)
                {
                    case MessageIdField:
                        if (wire != ProtoWire.WireLengthDelimited || ProtoWire.ReadLength(ref reader) != MessageIdBytes
                            || !TryReadId(ref reader, out messageId))
                        {
                            return false;
                        }

                        break;
                    case AcceptedAtField when wire == ProtoWire.WireVarint:
                        acceptedAtMs = (long)ProtoWire.ReadVarint(ref reader);
                        break;
                    case DuplicateField when wire == ProtoWire.WireVarint:
                        duplicate = ProtoWire.ReadVarint(ref reader) != 0;
                        break;
                    default:
                        return false; // a known field with another wire type: stock parsers skip it as unknown
                }
            }

            return (seen & (1u << MessageIdField)) != 0;
        }
        catch (RelayException)
        {
            // Truncated, an over-long varint or a tag stock parsers may read differently: theirs to judge.
            return false;
        }
    }

    private static bool TryReadId(ref SequenceReader<byte> reader, out UInt128 id)
    {
        Span<byte> bytes = stackalloc byte[MessageIdBytes];
        if (!reader.TryCopyTo(bytes))
        {
            id = default;
            return false;
        }

        reader.Advance(MessageIdBytes);
        id = BinaryPrimitives.ReadUInt128BigEndian(bytes);
        return true;
    }
}
