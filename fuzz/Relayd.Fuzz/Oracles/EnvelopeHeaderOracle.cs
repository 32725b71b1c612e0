using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Fuzz.Oracles;

/// <summary>
/// <see cref="EnvelopeHeader.TryRead"/> takes a frame body. When it claims the frame is an Envelope, the generated
/// parser must read the same frame as an Envelope with the same routing fields (the relay routes and checks the
/// sender on what it read; the recipient's library sees what protobuf reads), and every segmentation must agree.
/// MALFORMED_FRAME and "not the fast path" (false) are allowed outcomes.
/// </summary>
internal static class EnvelopeHeaderOracle
{
    private const string Reader = "EnvelopeHeader.TryRead";

    public static void Check(byte[] input) =>
        WireAgreement.AcrossSegmentations(Reader, input, frame =>
        {
            if (!EnvelopeHeader.TryRead(frame, out EnvelopeHeader header))
            {
                return "not an envelope-only frame";
            }

            Agree(input, frame, header);
            return "read";
        });

    private static void Agree(byte[] input, in ReadOnlySequence<byte> frame, in EnvelopeHeader header)
    {
        Frame parsed = WireAgreement.ParseAccepted(Reader, input);
        if (parsed.BodyCase != Frame.BodyOneofCase.Envelope)
        {
            throw new OracleViolationException($"{Reader} read an envelope, Google.Protobuf a {parsed.BodyCase}");
        }

        if (header.Envelope.Offset + header.Envelope.Length != input.Length)
        {
            throw new OracleViolationException($"{Reader} put the envelope at {header.Envelope} in a frame of {input.Length} bytes");
        }

        Envelope envelope = parsed.Envelope;
        WireAgreement.Same(Reader, "message_id", Slice(frame, header.MessageIdSlice), envelope.MessageId);
        WireAgreement.Same(Reader, "sender_partner", Slice(frame, header.SenderPartner).ToArray(), Encoding.UTF8.GetBytes(envelope.SenderPartner));
        WireAgreement.Same(Reader, "sender_user", Slice(frame, header.SenderUser), envelope.SenderUser);
        WireAgreement.Same(Reader, "recipient_partner", Slice(frame, header.RecipientPartner).ToArray(), Encoding.UTF8.GetBytes(envelope.RecipientPartner));
        WireAgreement.Same(Reader, "recipient_user", Slice(frame, header.RecipientUser), envelope.RecipientUser);
        WireAgreement.Same(Reader, "content_kind", header.ContentKind, (int)envelope.ContentKind);
        WireAgreement.Same(Reader, "expires_at_ms", header.ExpiresAtMs, envelope.ExpiresAtMs);
        if (header.HasValidMessageId)
        {
            WireAgreement.Same(Reader, "message_id (as a number)", header.MessageId, BinaryPrimitives.ReadUInt128BigEndian(envelope.MessageId.Span));
        }
    }

    private static ReadOnlySequence<byte> Slice(in ReadOnlySequence<byte> frame, FieldSlice field) => frame.Slice(field.Offset, field.Length);
}
