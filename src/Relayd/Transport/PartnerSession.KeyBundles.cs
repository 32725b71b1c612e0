using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private void HandleKeyBundleRequest(KeyBundleRequest request) => throw NotYetCarried(nameof(KeyBundleRequest));

    private void HandleKeyBundleResponse(KeyBundleResponse response) => throw NotYetCarried(nameof(KeyBundleResponse));
}
