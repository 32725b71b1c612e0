using System.Buffers;

namespace Relayd.Protocol.Internal;

/// <summary>
/// Deliver frames read in place for <see cref="RelayClient.ConsumeInPlaceAsync"/>: the delivery id, the accepted time
/// and the envelope's fields as offsets into the input buffer, so a delivery costs no copy of its ciphertext and no
/// message objects. Only the layout the relay writes (the frame's one field is <c>deliver</c>) with the envelope read
/// by <see cref="EnvelopeWire"/>'s rules; any other frame goes to the generated parser.
/// </summary>
/// <remarks>
/// <code>
///  Frame { deliver = 5 } | Deliver { delivery_id = 1 (varint), envelope = 2 (bytes), accepted_at_ms = 3 (varint) }
/// </code>
/// </remarks>
internal static class DeliverWire
{
    public const int FrameDeliverField = 5;
    private const int DeliveryIdField = 1;
    private const int EnvelopeField = 2;
    private const int AcceptedAtField = 3;

    /// <summary>Whether <paramref name="frame"/> (a frame body without its length prefix) starts with the deliver field.</summary>
    public static bool IsDeliver(in ReadOnlySequence<byte> frame) =>
        !frame.FirstSpan.IsEmpty && frame.FirstSpan[0] == (byte)ProtoWire.Tag(FrameDeliverField, ProtoWire.WireLengthDelimited);

    /// <summary>
    /// Reads a Deliver frame in place. False when it is not in the relay's layout (another field beside deliver, or
    /// no envelope): the caller parses it with the generated parser instead.
    /// </summary>
    /// <exception cref="RelayException">MALFORMED_FRAME when a field breaks <see cref="EnvelopeWire"/>'s rules (the caller lets the generated parser judge it).</exception>
    public static bool TryRead(in ReadOnlySequence<byte> frame, out ulong deliveryId, out long acceptedAtMs, out EnvelopeHeader envelope)
    {
        deliveryId = 0;
        acceptedAtMs = 0;
        envelope = default;
        if (!IsDeliver(frame))
        {
            return false;
        }

        var reader = new SequenceReader<byte>(frame);
        reader.Advance(1);
        int bodyLength = ProtoWire.ReadLength(ref reader);
        if (bodyLength != reader.Remaining)
        {
            return false;
        }

        bool haveEnvelope = false;
        uint seen = 0;
        while (!reader.End)
        {
            ProtoWire.ReadTag(ref reader, out int field, out int wireType);
            switch (field)
            {
                case DeliveryIdField:
                    ProtoWire.CheckKnownField(field, wireType, ProtoWire.WireVarint, ref seen);
                    deliveryId = ProtoWire.ReadVarint(ref reader);
                    break;
                case AcceptedAtField:
                    ProtoWire.CheckKnownField(field, wireType, ProtoWire.WireVarint, ref seen);
                    acceptedAtMs = (long)ProtoWire.ReadVarint(ref reader);
                    break;
                case EnvelopeField:
                    ProtoWire.CheckKnownField(field, wireType, ProtoWire.WireLengthDelimited, ref seen);
                    int length = ProtoWire.ReadLength(ref reader);
                    long start = reader.Consumed;

                    // A reader that ends where the envelope ends, at the same offsets as the frame's.
                    var inner = new SequenceReader<byte>(frame.Slice(0, start + length));
                    inner.Advance(start);
                    EnvelopeWire.ReadFields(frame, ref inner, out envelope);
                    envelope.Envelope = new FieldSlice(start, length);
                    reader.Advance(length);
                    haveEnvelope = true;
                    break;
                default:
                    ProtoWire.SkipField(ref reader, wireType);
                    break;
            }
        }

        return haveEnvelope;
    }
}
