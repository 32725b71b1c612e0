using Relayd.Interop.ReadReceipts;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

/// <summary>Read receipts (docs/protocol.md, "Read receipts"): the logic is <see cref="ReadReceiptRelay"/>.</summary>
internal sealed partial class PartnerSession
{
    private void HandleReadReceipt(ReadReceipt receipt)
    {
        ReadReceiptRelay relay = _services.ReadReceipts ?? throw NotYetCarried(nameof(ReadReceipt));
        int ignored;
        try
        {
            ignored = relay.Forward(Partner, receipt);
        }
        catch (Protocol.RelayException ex)
        {
            WriteError(ex.Code, ex.Detail, fatal: false);
            return;
        }

        if (ignored > 0)
        {
            WriteError(
                ErrorCode.UnknownMessage,
                $"{ignored} of the {receipt.MessageIds.Count} message ids were not delivered from partner '{receipt.SenderPartner}' to partner '{Partner.Id}' (or are older than the relay remembers); no READ receipt was sent for them",
                fatal: false);
        }
    }
}
