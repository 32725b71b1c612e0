using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Delivery;

/// <summary>
/// Settles envelopes whose fate is decided (acknowledged or expired): each receipt goes to a connected session of its
/// sender partner, or is held until one connects, and the log is told which are settled and which held.
/// </summary>
/// <remarks>
/// Receipts have no order to keep across sessions, so they go to the partner's first attached delivery consumer (its
/// <see cref="IDeliveryConsumer.ReceiptSink"/>): the partner's mailbox already knows its connected sessions.
/// </remarks>
internal sealed class ReceiptDispatcher : ISettlementSink
{
    private readonly IEnvelopeStore _store;
    private readonly ILogger _logger;
    private Routing.SupportEvents _support = Routing.SupportEvents.None;
    private TimeProvider _clock = TimeProvider.System;

    public ReceiptDispatcher(IEnvelopeStore store, ILogger logger)
    {
        _store = store;
        _logger = logger;
    }

    /// <summary>
    /// Where receipts produced from now on are reported. Set once the support consumers exist, after recovery (the
    /// receipts recovery settles are not reported: what a restart recovers, the trace reads from its own files).
    /// </summary>
    public void ReportTo(Routing.SupportEvents support, TimeProvider clock)
    {
        _support = support;
        _clock = clock;
    }

    /// <summary>
    /// The fate of envelopes is decided (acknowledged or expired): receipts to their senders, and the log told they
    /// are settled so that they are not delivered again and their segments can go.
    /// </summary>
    public void Settle(List<SettledEnvelope> settled)
    {
        if (settled.Count == 0)
        {
            return;
        }

        DispatchReceipts(settled);
    }

    /// <summary>
    /// Sends receipts to a connected session of each sender partner, one lock per run of the same sender, and tells
    /// the log: settled when a session has them (or nobody is left to tell), settled with the receipts held when the
    /// sender is away (a restart then holds them again). Rearranges <paramref name="receipts"/> in place.
    /// </summary>
    private void DispatchReceipts(List<SettledEnvelope> receipts)
    {
        Span<SettledEnvelope> all = CollectionsMarshal.AsSpan(receipts);
        int settled = 0; // all[..settled]: handed to a session, or nobody to tell; one Settle call for them below
        int start = 0;
        while (start < all.Length)
        {
            PartnerInfo? sender = all[start].Sender;
            int end = start + 1;
            while (end < all.Length && ReferenceEquals(all[end].Sender, sender))
            {
                end++;
            }

            Span<SettledEnvelope> run = all[start..end];
            if (sender is not null)
            {
                MarkDelivered(sender, run);
            }

            IReceiptSink? sink = sender is null ? null : PickSink(sender);
            if (sender is not null)
            {
                ReportProduced(sender, run, sink?.ConnectionId ?? 0);
            }

            if (sender is not null && sink is null)
            {
                Hold(sender, run);
            }
            else
            {
                sink?.EnqueueReceipts(run); // a sender partner no longer approved (null) has nobody to tell
                run.CopyTo(all[settled..]);
                settled += run.Length;
            }

            start = end;
        }

        _store.Settle(all[..settled]);
    }

    /// <summary>
    /// Records in the sender's index that its recipient took these messages (what abuse reports and read receipts
    /// check). The sender's dedup lock, once per run; no allocation.
    /// </summary>
    private static void MarkDelivered(PartnerInfo sender, ReadOnlySpan<SettledEnvelope> run)
    {
        IdempotencyIndex index = sender.Idempotency;

        // Ask for every id's chain head first, so the lookups' memory fetches overlap instead of following each other.
        foreach (ref readonly SettledEnvelope settled in run)
        {
            index.Prefetch(IdempotencyIndex.Probe(settled.Receipt.MessageId));
        }

        lock (index.SyncRoot)
        {
            foreach (ref readonly SettledEnvelope settled in run)
            {
                if (settled.Receipt.Status == Protocol.V1.ReceiptStatus.Delivered)
                {
                    index.MarkDelivered(settled.Receipt.MessageId);
                }
            }
        }
    }

    private void Hold(PartnerInfo partner, ReadOnlySpan<SettledEnvelope> receipts)
    {
        _store.SettleHeld(receipts);
        HoldInMemory(partner, receipts);
    }

    /// <summary>Holds receipts until a session of <paramref name="partner"/> connects (the oldest dropped beyond the bound).</summary>
    private void HoldInMemory(PartnerInfo partner, ReadOnlySpan<SettledEnvelope> receipts)
    {
        var dropped = new List<SettledEnvelope>();
        partner.HeldReceipts.Hold(receipts, dropped);
        if (dropped.Count > 0)
        {
            RelayLog.ReceiptsDropped(_logger, dropped.Count, partner.Id);
            _store.Settle(CollectionsMarshal.AsSpan(dropped));
        }

        // A session may have opened and taken the held receipts between the check and the hold.
        if (PickSink(partner) is { } late)
        {
            HandOverHeld(partner, late);
        }
    }

    /// <summary>Hands <paramref name="sink"/>, a session of <paramref name="partner"/> that has just attached, the receipts held while the partner had no connection.</summary>
    public void HandOverHeld(PartnerInfo partner, IReceiptSink sink)
    {
        SettledEnvelope[] held = partner.HeldReceipts.TakeAll();
        if (held.Length == 0)
        {
            return;
        }

        sink.EnqueueReceipts(held);
        _store.Settle(held); // handed over: no longer held after a restart
        ReportProduced(partner, held, sink.ConnectionId);
    }

    /// <summary>
    /// Receipts a closing session of <paramref name="partner"/> had not written: to another of its sessions, or held
    /// until one connects. In memory only: the log already has their envelopes settled, so a restart of the relay
    /// before the partner reconnects loses them.
    /// </summary>
    public void ReturnUnsent(PartnerInfo partner, ReadOnlySpan<SettledEnvelope> receipts)
    {
        IReceiptSink? sink = PickSink(partner);
        ReportProduced(partner, receipts, sink?.ConnectionId ?? 0);
        if (sink is not null)
        {
            sink.EnqueueReceipts(receipts);
        }
        else
        {
            HoldInMemory(partner, receipts);
        }
    }

    /// <summary>Reports receipts for <paramref name="sender"/> handed to session <paramref name="connectionId"/>, or held (0).</summary>
    private void ReportProduced(PartnerInfo sender, ReadOnlySpan<SettledEnvelope> receipts, long connectionId)
    {
        if (_support.IsEmpty)
        {
            return;
        }

        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (ref readonly SettledEnvelope settled in receipts)
        {
            _support.ReceiptProduced(sender, settled.Receipt.MessageId, settled.Receipt.Status, settled.Receipt.Code, connectionId, now);
        }
    }

    private static IReceiptSink? PickSink(PartnerInfo partner) => partner.Mailbox.PickConsumer(0)?.ReceiptSink;
}
