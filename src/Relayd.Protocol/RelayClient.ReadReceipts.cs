using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>Read receipts (docs/protocol.md, "Read receipts"): telling a sender partner its messages were read.</summary>
public sealed partial class RelayClient
{
    /// <summary>
    /// Tells <see cref="ReadReceipt.SenderPartner"/> that this partner's users read these messages: it gets
    /// Receipt(READ) for those the relay delivered from it to this partner (now, or when it next connects). For ids
    /// the relay did not deliver here it answers one non-fatal Error UNKNOWN_MESSAGE naming how many it ignored.
    /// </summary>
    public ValueTask SendReadReceiptAsync(ReadReceipt receipt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(receipt);
        WriteInteropFrame(new Frame { ReadReceipt = receipt });
        return ValueTask.CompletedTask;
    }
}
