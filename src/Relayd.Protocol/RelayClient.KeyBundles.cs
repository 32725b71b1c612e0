using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private ValueTask OnKeyBundleRequestAsync(KeyBundleRequest request, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private void OnKeyBundleResponse(KeyBundleResponse response)
    {
    }
}
