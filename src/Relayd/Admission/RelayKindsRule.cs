using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>
/// The relay carries this content kind at all (<c>[interop] kinds</c>, the launch profile by default): checked before
/// the recipient's own kinds (<see cref="ContentKindRule"/>), so the refusal says it is the relay's policy.
/// </summary>
internal sealed class RelayKindsRule(RelayKindPolicy policy) : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (policy.Allows(request.ContentKind))
        {
            refusal = default;
            return true;
        }

        refusal = new AdmissionRefusal(ErrorCode.ContentKindUnsupported, policy.Refusal(request.ContentKind));
        return false;
    }
}
