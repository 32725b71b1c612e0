using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>
/// Nothing goes to or comes from a partner an operator suspended (<c>relayd ctl suspend</c>): PARTNER_SUSPENDED, no
/// retry-after (the suspension lasts until the operator lifts it). Before dedup, so a resend is refused as well; what
/// was accepted before the suspension stays queued and is delivered after the resume. Two flag reads.
/// </summary>
internal sealed class SuspensionRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (request.Sender.IsSuspended)
        {
            refusal = new AdmissionRefusal(ErrorCode.PartnerSuspended, $"partner '{request.Sender.Id}' is suspended on this relay");
            return false;
        }

        if (request.Recipient is { IsSuspended: true } recipient)
        {
            refusal = new AdmissionRefusal(ErrorCode.PartnerSuspended, $"recipient partner '{recipient.Id}' is suspended on this relay; retry after it is resumed");
            return false;
        }

        refusal = default;
        return true;
    }
}
