using System.Buffers;
using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>A partner sends only as itself: sender_partner must be the partner its certificate authenticated.</summary>
internal sealed class SenderRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        IAdmissionPartner sender = request.Sender;
        if (sender.IsRetired)
        {
            // A reload removed it: its sessions were sent GoAway; what they still send in the meantime is not taken.
            refusal = new AdmissionRefusal(ErrorCode.PartnerNotApproved, $"partner '{sender.Id}' is no longer approved on this relay (configuration reloaded)");
            return false;
        }

        // Parsed frames (all but an envelope) carry the id as text; an envelope's is sliced from its frame.
        bool media = request.Subject != AdmissionSubject.Envelope;
        if (media ? string.Equals(request.SenderPartnerText, sender.Id, StringComparison.Ordinal) : SequenceEquals(request.SenderPartnerUtf8, sender.IdUtf8))
        {
            refusal = default;
            return true;
        }

        // An envelope's refusal does not echo the claimed id (it would be decoded from the frame for the detail only).
        refusal = new AdmissionRefusal(ErrorCode.SenderMismatch, media
            ? $"sender_partner '{request.SenderPartnerText}' is not the authenticated partner '{sender.Id}'"
            : $"sender_partner is not the authenticated partner '{sender.Id}'");
        return false;
    }

    private static bool SequenceEquals(in ReadOnlySequence<byte> value, ReadOnlySpan<byte> expected) =>
        value.IsSingleSegment ? value.FirstSpan.SequenceEqual(expected) : value.Length == expected.Length && SlowEquals(value, expected);

    private static bool SlowEquals(in ReadOnlySequence<byte> value, ReadOnlySpan<byte> expected)
    {
        Span<byte> copy = stackalloc byte[expected.Length];
        value.CopyTo(copy);
        return copy.SequenceEqual(expected);
    }
}
