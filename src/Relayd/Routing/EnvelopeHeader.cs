using System.Buffers;
using System.Buffers.Binary;
using Relayd.Protocol.Framing;

namespace Relayd.Routing;

/// <summary>A field's place inside the frame it was read from.</summary>
internal readonly record struct FieldSlice(long Offset, int Length)
{
    public bool IsEmpty => Length == 0;
}

/// <summary>
/// The routing fields of an Envelope frame, read in place: offsets into the frame instead of copies, so reading a
/// header allocates nothing and the ciphertext is never touched.
/// </summary>
internal struct EnvelopeHeader
{
    // Field numbers from relayd.proto (Frame.envelope and Envelope.*).
    private const int FrameEnvelopeField = 3;
    private const int MessageIdField = 1;
    private const int SenderPartnerField = 2;
    private const int SenderUserField = 3;
    private const int RecipientPartnerField = 4;
    private const int RecipientUserField = 5;
    private const int ContentKindField = 6;
    private const int CiphertextField = 7;
    private const int ClientTimestampField = 8;
    private const int ExpiresAtField = 9;

    public const int MessageIdBytes = 16;

    /// <summary>The serialized Envelope message inside the frame (what a Deliver frame carries unchanged).</summary>
    public FieldSlice Envelope;
    public FieldSlice MessageIdSlice;
    public FieldSlice SenderPartner;
    public FieldSlice SenderUser;
    public FieldSlice RecipientPartner;
    public FieldSlice RecipientUser;
    public FieldSlice Ciphertext;
    public UInt128 MessageId;
    public int ContentKind;
    public long ClientTimestampMs;
    public long ExpiresAtMs;

    public readonly bool HasValidMessageId => MessageIdSlice.Length == MessageIdBytes;

    /// <summary>
    /// Reads the header of a frame whose only field is <c>envelope</c> (what every encoder writes). Returns false for
    /// any other frame, which then takes the general path through the generated parser.
    /// </summary>
    /// <exception cref="Relayd.Protocol.RelayException">MALFORMED_FRAME when the envelope is not valid protobuf.</exception>
    public static bool TryRead(in ReadOnlySequence<byte> frame, out EnvelopeHeader header)
    {
        header = default;
        var reader = new SequenceReader<byte>(frame);
        if (!reader.TryRead(out byte tag) || tag != ProtoWire.Tag(FrameEnvelopeField, ProtoWire.WireLengthDelimited))
        {
            return false;
        }

        int envelopeLength = ProtoWire.ReadLength(ref reader);
        long start = reader.Consumed;
        if (start + envelopeLength != frame.Length)
        {
            return false;
        }

        header.Envelope = new FieldSlice(start, envelopeLength);
        long end = start + envelopeLength;
        while (reader.Consumed < end)
        {
            ulong fieldTag = ProtoWire.ReadVarint(ref reader);
            int field = (int)(fieldTag >> 3);
            int wireType = (int)(fieldTag & 7);
            if (wireType == ProtoWire.WireLengthDelimited && field is >= MessageIdField and <= CiphertextField and not ContentKindField)
            {
                int length = ProtoWire.ReadLength(ref reader);
                var slice = new FieldSlice(reader.Consumed, length);
                reader.Advance(length);
                switch (field)
                {
                    case MessageIdField: header.MessageIdSlice = slice; break;
                    case SenderPartnerField: header.SenderPartner = slice; break;
                    case SenderUserField: header.SenderUser = slice; break;
                    case RecipientPartnerField: header.RecipientPartner = slice; break;
                    case RecipientUserField: header.RecipientUser = slice; break;
                    default: header.Ciphertext = slice; break;
                }
            }
            else if (wireType == ProtoWire.WireVarint && field is ContentKindField or ClientTimestampField or ExpiresAtField)
            {
                ulong value = ProtoWire.ReadVarint(ref reader);
                switch (field)
                {
                    case ContentKindField: header.ContentKind = (int)value; break;
                    case ClientTimestampField: header.ClientTimestampMs = (long)value; break;
                    default: header.ExpiresAtMs = (long)value; break;
                }
            }
            else
            {
                // Unknown fields (a newer sender) are skipped here and forwarded untouched in the Deliver frame.
                ProtoWire.SkipField(ref reader, wireType);
            }
        }

        if (header.HasValidMessageId)
        {
            Span<byte> id = stackalloc byte[MessageIdBytes];
            frame.Slice(header.MessageIdSlice.Offset, MessageIdBytes).CopyTo(id);
            header.MessageId = BinaryPrimitives.ReadUInt128BigEndian(id);
        }

        return true;
    }
}
