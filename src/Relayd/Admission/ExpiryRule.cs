using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>Nothing already expired is taken (expires_at_ms 0 = none: the relay's retention applies).</summary>
internal sealed class ExpiryRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (request.ExpiresAtMs == 0 || request.ExpiresAtMs > request.NowMs)
        {
            refusal = default;
            return true;
        }

        refusal = new AdmissionRefusal(ErrorCode.Expired, "expires_at_ms is in the past");
        return false;
    }
}
