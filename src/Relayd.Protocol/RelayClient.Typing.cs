using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private ValueTask OnTypingAsync(Typing typing, CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
