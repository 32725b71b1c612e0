using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>A blob's declared size is within the sender partner's limit (checked before any byte of it is taken).</summary>
internal sealed class MediaSizeRule : IAdmissionRule
{
    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        long limit = request.SenderMediaLimitBytes;
        if (request.DeclaredMediaBytes <= (ulong)limit)
        {
            refusal = default;
            return true;
        }

        refusal = new AdmissionRefusal(ErrorCode.MediaTooLarge, $"declared size {request.DeclaredMediaBytes} exceeds the limit of {limit} bytes for partner '{request.Sender.Id}'");
        return false;
    }
}
