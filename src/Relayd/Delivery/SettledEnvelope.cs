namespace Relayd.Delivery;

/// <summary>
/// An envelope whose fate is decided (acknowledged by its recipient, or expired): the receipt for its sender and the
/// position of its record in the write-ahead log, which a Settled record then marks as done.
/// </summary>
internal readonly record struct SettledEnvelope(int SenderPartner, ReceiptItem Receipt, ulong WalPosition)
{
    public static SettledEnvelope Delivered(int senderPartner, UInt128 messageId, ulong walPosition) =>
        new(senderPartner, new ReceiptItem(messageId, Protocol.V1.ReceiptStatus.Delivered, Protocol.V1.ErrorCode.Unspecified), walPosition);

    public static SettledEnvelope Expired(int senderPartner, UInt128 messageId, ulong walPosition) =>
        new(senderPartner, new ReceiptItem(messageId, Protocol.V1.ReceiptStatus.ExpiredUndelivered, Protocol.V1.ErrorCode.Expired), walPosition);
}
