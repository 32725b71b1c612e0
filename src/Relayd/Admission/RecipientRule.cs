using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>recipient_partner names an approved partner of this relay.</summary>
internal sealed class RecipientRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (request.Recipient is not null)
        {
            refusal = default;
            return true;
        }

        refusal = new AdmissionRefusal(ErrorCode.UnknownRecipientPartner, request.Subject != AdmissionSubject.Envelope
            ? $"no approved partner '{request.RecipientPartnerText}'"
            : "recipient_partner is not an approved partner of this relay");
        return false;
    }
}
