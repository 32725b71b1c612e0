using System.Buffers.Binary;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// Hand-encoded frames the relay sends once per message (Deliver, Ack, Receipt). Writing them field by field keeps the
/// hot path free of message objects; tests check every one of them against the generated parser.
/// Field numbers are those of relayd.proto.
/// </summary>
internal static class WireFrames
{
    private const int FrameAckField = 4;
    private const int FrameDeliverField = 5;
    private const int FrameReceiptField = 7;

    private const int AckMessageIdField = 1;
    private const int AckAcceptedAtField = 2;
    private const int AckDuplicateField = 3;

    private const int DeliverIdField = 1;
    private const int DeliverEnvelopeField = 2;
    private const int DeliverAcceptedAtField = 3;

    private const int ReceiptStatusField = 1;
    private const int ReceiptMessageIdsField = 2;
    private const int ReceiptCodeField = 3;
    private const int ReceiptAtField = 4;

    private const int MessageIdBytes = 16;

    /// <summary>Most message ids one Receipt frame carries: ~18 KiB, well within the smallest frame limit a recipient may declare (128 KiB).</summary>
    public const int MaxIdsPerReceipt = 1024;

    /// <summary>Largest encoded Receipt: used to size scratch buffers.</summary>
    public static readonly int MaxReceiptFrameBytes = ReceiptFrameSize(MaxIdsPerReceipt, ReceiptStatus.Refused, ErrorCode.Internal, long.MaxValue);

    // ---- Deliver: Frame{deliver: Deliver{delivery_id, envelope: <bytes as received>, accepted_at_ms}} ----

    public static int DeliverBodySize(int envelopeLength, ulong deliveryId, long acceptedAtMs) =>
        ProtoWire.VarintFieldSize(DeliverIdField, deliveryId)
        + ProtoWire.LengthDelimitedFieldSize(DeliverEnvelopeField, envelopeLength)
        + ProtoWire.VarintFieldSize(DeliverAcceptedAtField, (ulong)acceptedAtMs);

    /// <summary>
    /// Most bytes the body of a Deliver frame for an envelope of <paramref name="envelopeLength"/> bytes can take (the
    /// length prefix not counted, as for max_frame_bytes): whatever its delivery id and acceptance time turn out to be.
    /// </summary>
    public static int MaxDeliverFrameBodyBytes(int envelopeLength) =>
        ProtoWire.LengthDelimitedFieldSize(FrameDeliverField, DeliverBodySize(envelopeLength, ulong.MaxValue, long.MaxValue));

    /// <summary>Whole Deliver frame size, length prefix included.</summary>
    public static int DeliverFrameSize(int envelopeLength, ulong deliveryId, long acceptedAtMs)
    {
        int frame = ProtoWire.LengthDelimitedFieldSize(FrameDeliverField, DeliverBodySize(envelopeLength, deliveryId, acceptedAtMs));
        return ProtoWire.VarintSize((ulong)frame) + frame;
    }

    /// <summary>
    /// Writes the Deliver frame up to the envelope bytes; returns the offset at which the caller copies the envelope.
    /// Call <see cref="WriteDeliverTrailer"/> after it.
    /// </summary>
    public static int WriteDeliverHeader(Span<byte> destination, int envelopeLength, ulong deliveryId, long acceptedAtMs)
    {
        int body = DeliverBodySize(envelopeLength, deliveryId, acceptedAtMs);
        int frame = ProtoWire.LengthDelimitedFieldSize(FrameDeliverField, body);
        int n = ProtoWire.WriteVarint(destination, (ulong)frame);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], FrameDeliverField, body);
        n += ProtoWire.WriteVarintField(destination[n..], DeliverIdField, deliveryId);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], DeliverEnvelopeField, envelopeLength);
        return n;
    }

    public static int WriteDeliverTrailer(Span<byte> destination, long acceptedAtMs) =>
        ProtoWire.WriteVarintField(destination, DeliverAcceptedAtField, (ulong)acceptedAtMs);

    // ---- Ack: Frame{ack: Ack{message_id, accepted_at_ms, duplicate}} ----

    public const int MaxAckFrameBytes = 64;

    public static int WriteAck(Span<byte> destination, UInt128 messageId, long acceptedAtMs, bool duplicate)
    {
        int body = ProtoWire.LengthDelimitedFieldSize(AckMessageIdField, MessageIdBytes)
            + ProtoWire.VarintFieldSize(AckAcceptedAtField, (ulong)acceptedAtMs)
            + (duplicate ? ProtoWire.VarintFieldSize(AckDuplicateField, 1) : 0);
        int frame = ProtoWire.LengthDelimitedFieldSize(FrameAckField, body);
        int n = ProtoWire.WriteVarint(destination, (ulong)frame);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], FrameAckField, body);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], AckMessageIdField, MessageIdBytes);
        BinaryPrimitives.WriteUInt128BigEndian(destination[n..], messageId);
        n += MessageIdBytes;
        n += ProtoWire.WriteVarintField(destination[n..], AckAcceptedAtField, (ulong)acceptedAtMs);
        if (duplicate)
        {
            n += ProtoWire.WriteVarintField(destination[n..], AckDuplicateField, 1);
        }

        return n;
    }

    // ---- Receipt: Frame{receipt: Receipt{status, message_ids..., code, at_ms}} ----

    private static int ReceiptBodySize(int ids, ReceiptStatus status, ErrorCode code, long atMs) =>
        ProtoWire.VarintFieldSize(ReceiptStatusField, (ulong)status)
        + (ids * ProtoWire.LengthDelimitedFieldSize(ReceiptMessageIdsField, MessageIdBytes))
        + (code == ErrorCode.Unspecified ? 0 : ProtoWire.VarintFieldSize(ReceiptCodeField, (ulong)code))
        + ProtoWire.VarintFieldSize(ReceiptAtField, (ulong)atMs);

    public static int ReceiptFrameSize(int ids, ReceiptStatus status, ErrorCode code, long atMs)
    {
        int frame = ProtoWire.LengthDelimitedFieldSize(FrameReceiptField, ReceiptBodySize(ids, status, code, atMs));
        return ProtoWire.VarintSize((ulong)frame) + frame;
    }

    /// <summary>Writes one Receipt frame for <paramref name="items"/>, which must all share status and code.</summary>
    public static int WriteReceipt(Span<byte> destination, ReadOnlySpan<ReceiptItem> items, long atMs)
    {
        ReceiptStatus status = items[0].Status;
        ErrorCode code = items[0].Code;
        int body = ReceiptBodySize(items.Length, status, code, atMs);
        int frame = ProtoWire.LengthDelimitedFieldSize(FrameReceiptField, body);
        int n = ProtoWire.WriteVarint(destination, (ulong)frame);
        n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], FrameReceiptField, body);
        n += ProtoWire.WriteVarintField(destination[n..], ReceiptStatusField, (ulong)status);
        foreach (ref readonly ReceiptItem item in items)
        {
            n += ProtoWire.WriteLengthDelimitedHeader(destination[n..], ReceiptMessageIdsField, MessageIdBytes);
            BinaryPrimitives.WriteUInt128BigEndian(destination[n..], item.MessageId);
            n += MessageIdBytes;
        }

        if (code != ErrorCode.Unspecified)
        {
            n += ProtoWire.WriteVarintField(destination[n..], ReceiptCodeField, (ulong)code);
        }

        n += ProtoWire.WriteVarintField(destination[n..], ReceiptAtField, (ulong)atMs);
        return n;
    }
}
