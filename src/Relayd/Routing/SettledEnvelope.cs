using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>
/// An envelope whose fate is decided (acknowledged by its recipient, or expired): the receipt for its sender (null
/// when the sender is no longer approved: nobody to tell) and its reference in the store, which is then told it is settled.
/// </summary>
internal readonly record struct SettledEnvelope(PartnerInfo? Sender, ReceiptItem Receipt, StoreRef StoreRef)
{
    public static SettledEnvelope Delivered(PartnerInfo? sender, UInt128 messageId, StoreRef storeRef) =>
        new(sender, new ReceiptItem(messageId, Protocol.V1.ReceiptStatus.Delivered, Protocol.V1.ErrorCode.Unspecified), storeRef);

    /// <summary>Dropped from the queue: its sender user or recipient user revoked consent while it waited.</summary>
    public static SettledEnvelope NotOptedIn(PartnerInfo? sender, UInt128 messageId, StoreRef storeRef) =>
        new(sender, new ReceiptItem(messageId, Protocol.V1.ReceiptStatus.Refused, Protocol.V1.ErrorCode.NotOptedIn), storeRef);

    public static SettledEnvelope Expired(PartnerInfo? sender, UInt128 messageId, StoreRef storeRef) =>
        new(sender, new ReceiptItem(messageId, Protocol.V1.ReceiptStatus.ExpiredUndelivered, Protocol.V1.ErrorCode.Expired), storeRef);
}

/// <summary>Tells the store about settled envelopes: their references copied out in chunks on the stack (no allocation).</summary>
internal static class SettledEnvelopeStore
{
    private const int Chunk = 256;

    /// <summary>Marks the envelopes settled in the store (<see cref="IEnvelopeStore.Settle"/>).</summary>
    public static void Settle(this IEnvelopeStore store, ReadOnlySpan<SettledEnvelope> settled)
    {
        Span<StoreRef> references = stackalloc StoreRef[Math.Min(settled.Length, Chunk)];
        while (!settled.IsEmpty)
        {
            int count = Math.Min(settled.Length, Chunk);
            for (int i = 0; i < count; i++)
            {
                references[i] = settled[i].StoreRef;
            }

            store.Settle(references[..count]);
            settled = settled[count..];
        }
    }

    /// <summary>Marks the envelopes settled with their receipts held (<see cref="IEnvelopeStore.SettleHeld"/>).</summary>
    public static void SettleHeld(this IEnvelopeStore store, ReadOnlySpan<SettledEnvelope> held)
    {
        Span<HeldReceiptEntry> entries = stackalloc HeldReceiptEntry[Math.Min(held.Length, Chunk)];
        while (!held.IsEmpty)
        {
            int count = Math.Min(held.Length, Chunk);
            for (int i = 0; i < count; i++)
            {
                entries[i] = new HeldReceiptEntry(held[i].StoreRef, held[i].Receipt.Status, held[i].Receipt.Code);
            }

            store.SettleHeld(entries[..count]);
            held = held[count..];
        }
    }
}
