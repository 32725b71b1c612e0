using System.Buffers;
using Relayd.Protocol.Internal;

namespace Relayd.Routing;

/// <summary>
/// The routing fields of an Envelope frame, read in place: offsets into the frame instead of copies, so reading a
/// header allocates nothing and the ciphertext is never touched.
/// </summary>
internal struct EnvelopeHeader
{
    // relayd.proto: Frame.envelope.
    private const int FrameEnvelopeField = 3;

    public const int MessageIdBytes = EnvelopeFields.MessageIdBytes;

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
        EnvelopeWire.ReadFields(frame, ref reader, out EnvelopeFields fields);
        header.MessageIdSlice = fields.MessageIdSlice;
        header.SenderPartner = fields.SenderPartner;
        header.SenderUser = fields.SenderUser;
        header.RecipientPartner = fields.RecipientPartner;
        header.RecipientUser = fields.RecipientUser;
        header.Ciphertext = fields.Ciphertext;
        header.MessageId = fields.MessageId;
        header.ContentKind = fields.ContentKind;
        header.ClientTimestampMs = fields.ClientTimestampMs;
        header.ExpiresAtMs = fields.ExpiresAtMs;
        return true;
    }
}
