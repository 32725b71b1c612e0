using System.Security.Cryptography;
using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>A MediaOpen declares the blob's SHA-256, which the relay checks the received bytes against.</summary>
internal sealed class MediaOpenFieldsRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (request.Sha256Length == SHA256.HashSizeInBytes)
        {
            refusal = default;
            return true;
        }

        refusal = new AdmissionRefusal(ErrorCode.MalformedFrame, "sha256 must be 32 bytes");
        return false;
    }
}
