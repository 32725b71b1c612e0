namespace Relayd.Routing;

/// <summary>What a shard queue hands its deliveries to: a connected session of the recipient partner.</summary>
internal interface IDeliveryConsumer
{
    /// <summary>Wakes the consumer's writer; called with no lock held.</summary>
    void OnDeliveriesAvailable();

    /// <summary>What the consumer's Hello said it can take (content kinds, frame size).</summary>
    ReceiveDeclaration Declared => ReceiveDeclaration.Any;

    /// <summary>Where receipts for this partner's messages go when this consumer is picked for them; null = it takes none.</summary>
    IReceiptSink? ReceiptSink => null;
}

/// <summary>A run of consecutive Deliver frames in one slab, taken by a consumer to write with one call.</summary>
internal readonly record struct DeliveryRange(DeliverySlab Slab, int Offset, int Length, int Count, int Epoch)
{
    public ReadOnlyMemory<byte> Memory => Slab.Buffer.AsMemory(Offset, Length);
}

/// <summary>One delivery of a <see cref="DeliveryRange"/>, as the support events report it once written.</summary>
internal readonly record struct TakenDelivery(PartnerInfo? Sender, UInt128 MessageId, ulong DeliveryId);

internal enum SpillLoad
{
    Loaded,
    NoRoom,
    NotSpilled,
}

internal enum AckResult
{
    Acknowledged,
    AlreadyAcknowledged,
    UnknownDelivery,
}
