using System.Buffers;
using System.Buffers.Binary;
using Relayd.Protocol.Internal;

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
    /// <remarks>
    /// The relay routes on what it reads here and the recipient's stock parser reads the same bytes, so this reader
    /// accepts only envelopes that every conforming parser reads exactly as it does: tags per
    /// <see cref="ProtoWire.ReadTag"/>, each known field at most once and with its declared wire type, string fields
    /// valid UTF-8, content_kind an int32, varints that fit 64 bits. Anything else is MALFORMED_FRAME (refused, never
    /// stored) rather than resolved by a rule a recipient's parser might apply differently. Unknown fields are skipped
    /// and forwarded untouched.
    /// </remarks>
    /// <exception cref="Relayd.Protocol.RelayException">MALFORMED_FRAME when the envelope breaks one of those rules.</exception>
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
        uint seen = 0;
        while (!reader.End)
        {
            ProtoWire.ReadTag(ref reader, out int field, out int wireType);
            switch (field)
            {
                case MessageIdField or SenderPartnerField or SenderUserField or RecipientPartnerField or RecipientUserField or CiphertextField:
                    ProtoWire.CheckKnownField(field, wireType, ProtoWire.WireLengthDelimited, ref seen);
                    int length = ProtoWire.ReadLength(ref reader);
                    var slice = new FieldSlice(reader.Consumed, length);
                    if (field is SenderPartnerField or RecipientPartnerField)
                    {
                        ProtoWire.CheckUtf8(frame.Slice(reader.Position, length), field);
                    }

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

                    break;
                case ContentKindField or ClientTimestampField or ExpiresAtField:
                    ProtoWire.CheckKnownField(field, wireType, ProtoWire.WireVarint, ref seen);
                    ulong value = ProtoWire.ReadVarint(ref reader);
                    switch (field)
                    {
                        case ContentKindField:
                            // An enum is an int32: stock parsers keep the low 32 bits of a wider value; refuse it instead.
                            header.ContentKind = value <= int.MaxValue || value >= unchecked((ulong)int.MinValue)
                                ? (int)value
                                : throw ProtoWire.Malformed("content_kind does not fit an int32");
                            break;
                        case ClientTimestampField: header.ClientTimestampMs = (long)value; break;
                        default: header.ExpiresAtMs = (long)value; break;
                    }

                    break;
                default:
                    // Unknown fields (a newer sender) are skipped here and forwarded untouched in the Deliver frame.
                    ProtoWire.SkipField(ref reader, wireType);
                    break;
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
