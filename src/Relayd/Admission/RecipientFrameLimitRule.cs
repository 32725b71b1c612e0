using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>
/// What the recipient is sent for this fits the largest frame its connections said they read (Hello.max_frame_bytes):
/// refused now rather than stored and never deliverable.
/// </summary>
internal sealed class RecipientFrameLimitRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        IAdmissionPartner recipient = request.KnownRecipient;
        int limit = recipient.DeclaredMaxFrameBytes;
        if (limit == 0 || request.RecipientFrameBytes <= limit)
        {
            refusal = default;
            return true;
        }

        string frame = request.Subject == AdmissionSubject.MediaOpen ? "the MediaOpen frame" : "the Deliver frame of this envelope";
        refusal = new AdmissionRefusal(ErrorCode.FrameTooLarge, $"{frame} takes up to {request.RecipientFrameBytes} bytes; partner '{recipient.Id}' reads frames of at most {limit} bytes (its Hello.max_frame_bytes)");
        return false;
    }
}
