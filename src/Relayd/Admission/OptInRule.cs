using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>
/// Both users opted in to this pair of partners. One refusal for "not opted in" and "no such user", whichever side
/// it is, so nobody can probe who exists (MIMI's noConsent standing in for userUnknown).
/// </summary>
internal sealed class OptInRule : IAdmissionRule
{
    private readonly IConsentPolicy _consent;

    public OptInRule(IConsentPolicy consent) => _consent = consent;

    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (!_consent.Required)
        {
            refusal = default;
            return true;
        }

        IAdmissionPartner recipient = request.KnownRecipient;
        if (_consent.OptedIn(request.Sender, request.SenderUser, recipient) && _consent.OptedIn(recipient, request.RecipientUser, request.Sender))
        {
            refusal = default;
            return true;
        }

        // The same text whichever user it is, and whether or not the user exists.
        refusal = new AdmissionRefusal(ErrorCode.NotOptedIn, $"the sender user and the recipient user have not both opted in to chats between '{request.Sender.Id}' and '{recipient.Id}'");
        return false;
    }
}
