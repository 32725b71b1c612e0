using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private void HandleReadReceipt(ReadReceipt receipt) => throw NotYetCarried(nameof(ReadReceipt));
}
