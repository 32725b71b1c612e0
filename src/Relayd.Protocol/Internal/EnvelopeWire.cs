using System.Buffers;
using System.Buffers.Binary;

namespace Relayd.Protocol.Internal;

/// <summary>A field's place inside the frame it was read from.</summary>
internal readonly record struct FieldSlice(long Offset, int Length)
{
    public bool IsEmpty => Length == 0;
}

/// <summary>
/// The fields of an Envelope read in place: offsets into the frame instead of copies, so reading one allocates nothing
/// and the ciphertext is never touched. The relay routes on it (<see cref="TryRead"/>, an Envelope frame), the client
/// reads deliveries with it (<see cref="DeliverWire"/>); <see cref="EnvelopeWire.ReadFields"/> holds the rules.
/// </summary>
internal struct EnvelopeHeader
{
    // relayd.proto: Frame.envelope.
    private const int FrameEnvelopeField = 3;

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
    /// <remarks>
    /// The relay routes on what it reads here and the recipient's stock parser reads the same bytes, so the fields are
    /// read by <see cref="EnvelopeWire.ReadFields"/>, which accepts only what every conforming parser reads the same way
    /// (MALFORMED_FRAME otherwise: refused, never stored). Unknown fields are skipped and forwarded untouched.
    /// </remarks>
    /// <exception cref="RelayException">MALFORMED_FRAME when the envelope breaks one of those rules.</exception>
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

        EnvelopeWire.ReadFields(frame, ref reader, out header);
        header.Envelope = new FieldSlice(start, envelopeLength);
        return true;
    }
}

/// <summary>
/// Reads an Envelope message in place, with the rules the relay admits envelopes by and the client library reads
/// deliveries by (one reader, so both sides agree on every byte). The relay uses it on each envelope a partner sends
/// (<see cref="EnvelopeHeader.TryRead"/>), the client on each Deliver (<see cref="DeliverWire"/>).
/// </summary>
/// <remarks>
/// It accepts only envelopes that every conforming parser reads exactly as it does: tags per
/// <see cref="ProtoWire.ReadTag"/>, each known field at most once and with its declared wire type, string fields valid
/// UTF-8, content_kind an int32, varints that fit 64 bits. Anything else is MALFORMED_FRAME rather than resolved by a
/// rule another parser might apply differently. Unknown fields are skipped.
/// </remarks>
internal static class EnvelopeWire
{
    // Field numbers from relayd.proto (Envelope.*).
    private const int MessageIdField = 1;
    private const int SenderPartnerField = 2;
    private const int SenderUserField = 3;
    private const int RecipientPartnerField = 4;
    private const int RecipientUserField = 5;
    private const int ContentKindField = 6;
    private const int CiphertextField = 7;
    private const int ClientTimestampField = 8;
    private const int ExpiresAtField = 9;

    /// <summary>
    /// Reads the Envelope fields (all but <see cref="EnvelopeHeader.Envelope"/>, the caller's) from <paramref name="reader"/> (over <paramref name="frame"/>, positioned at the
    /// envelope's first field and ending where the envelope ends) until its end. Offsets are the reader's, i.e. into
    /// <paramref name="frame"/> when the reader started at its beginning.
    /// </summary>
    /// <exception cref="RelayException">MALFORMED_FRAME when the envelope breaks one of the rules above.</exception>
    public static void ReadFields(in ReadOnlySequence<byte> frame, ref SequenceReader<byte> reader, out EnvelopeHeader fields)
    {
        fields = default;
        uint seen = 0;
        while (!reader.End)
        {
            ProtoWire.ReadTag(ref reader, out int field, out int wireType);
            switch (field)
            {
                case MessageIdField or SenderPartnerField or SenderUserField or RecipientPartnerField or RecipientUserField or CiphertextField:
                    ProtoWire.CheckKnownField(field, wireType, ProtoWire.WireLengthDelimited, ref seen);
                    int length = ProtoWire.ReadLength(ref reader); // within the envelope, or MALFORMED_FRAME
                    var slice = new FieldSlice(reader.Consumed, length);
                    if (field is SenderPartnerField or RecipientPartnerField)
                    {
                        ProtoWire.CheckUtf8(frame.Slice(reader.Position, length), field);
                    }

                    reader.Advance(length);
                    switch (field)
                    {
                        case MessageIdField: fields.MessageIdSlice = slice; break;
                        case SenderPartnerField: fields.SenderPartner = slice; break;
                        case SenderUserField: fields.SenderUser = slice; break;
                        case RecipientPartnerField: fields.RecipientPartner = slice; break;
                        case RecipientUserField: fields.RecipientUser = slice; break;
                        default: fields.Ciphertext = slice; break;
                    }

                    break;
                case ContentKindField or ClientTimestampField or ExpiresAtField:
                    ProtoWire.CheckKnownField(field, wireType, ProtoWire.WireVarint, ref seen);
                    ulong value = ProtoWire.ReadVarint(ref reader);
                    switch (field)
                    {
                        case ContentKindField:
                            // An enum is an int32: stock parsers keep the low 32 bits of a wider value; refuse it instead.
                            fields.ContentKind = value <= int.MaxValue || value >= unchecked((ulong)int.MinValue)
                                ? (int)value
                                : throw ProtoWire.Malformed("content_kind does not fit an int32");
                            break;
                        case ClientTimestampField: fields.ClientTimestampMs = (long)value; break;
                        default: fields.ExpiresAtMs = (long)value; break;
                    }

                    break;
                default:
                    // Unknown fields (a newer sender) are skipped here; the relay forwards them untouched in the Deliver.
                    ProtoWire.SkipField(ref reader, wireType);
                    break;
            }
        }

        if (fields.HasValidMessageId)
        {
            Span<byte> id = stackalloc byte[EnvelopeHeader.MessageIdBytes];
            frame.Slice(fields.MessageIdSlice.Offset, EnvelopeHeader.MessageIdBytes).CopyTo(id);
            fields.MessageId = BinaryPrimitives.ReadUInt128BigEndian(id);
        }
    }
}
