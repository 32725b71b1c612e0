using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>The recipient takes this content kind: the relay's configuration and its connections' Hello allow it.</summary>
internal sealed class ContentKindRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        IAdmissionPartner recipient = request.KnownRecipient;
        if (recipient.Accepts(request.ContentKind))
        {
            refusal = default;
            return true;
        }

        refusal = new AdmissionRefusal(ErrorCode.ContentKindUnsupported, recipient.KindRefusal(request.ContentKind));
        return false;
    }
}
