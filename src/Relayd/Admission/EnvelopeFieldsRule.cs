using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>An envelope carries what routing needs: a 16-byte message_id and a recipient_user.</summary>
internal sealed class EnvelopeFieldsRule : IAdmissionRule
{
    // relayd.proto: Envelope.message_id is 16 bytes (what the dedup index and the Ack carry).
    private const int MessageIdBytes = 16;

    public AdmissionStage Stage => AdmissionStage.BeforeDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (request.MessageIdLength != MessageIdBytes)
        {
            refusal = new AdmissionRefusal(ErrorCode.InvalidEnvelope, $"message_id must be {MessageIdBytes} bytes, got {request.MessageIdLength}");
            return false;
        }

        if (request.RecipientUserEmpty)
        {
            refusal = new AdmissionRefusal(ErrorCode.InvalidEnvelope, "recipient_user is empty");
            return false;
        }

        refusal = default;
        return true;
    }
}
