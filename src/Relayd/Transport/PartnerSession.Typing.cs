using Relayd.Admission;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

/// <summary>Typing notices, routed live (Interop/Typing): never stored, never logged.</summary>
internal sealed partial class PartnerSession
{
    private void HandleTyping(Typing typing)
    {
        if (_services.Typing.Forward(this, typing, _services, out AdmissionRefusal refusal))
        {
            return;
        }

        // Not fatal, and without an id to echo: a typing notice has none (its refusal is rare and repeats are alike).
        LogLiveRefusal(nameof(Typing), refusal.Code, refusal.Detail);
        WriteFrame(new Frame { Error = new Error { Code = refusal.Code, Detail = refusal.Detail, RetryAfterMs = refusal.RetryAfterMs } });
    }

    /// <summary>Whether a queued typing notice is still worth showing (younger than 10 s on the relay's clock); see the outbox.</summary>
    private bool TypingStillFresh(Typing typing) => _services.Typing.StillFresh(typing, _services.Clock.GetUtcNow().ToUnixTimeMilliseconds());
}
