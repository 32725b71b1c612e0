using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private void HandleTyping(Typing typing) => throw NotYetCarried(nameof(Typing));

    /// <summary>Whether a queued typing notice is still worth showing (younger than 10 s); see the outbox.</summary>
    private static bool TypingStillFresh(Typing typing) => true;
}
