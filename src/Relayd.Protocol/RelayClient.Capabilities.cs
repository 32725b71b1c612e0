using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private void OnCapabilities(Capabilities capabilities)
    {
    }

    private bool FailCapabilities(Error error) => false;
}
