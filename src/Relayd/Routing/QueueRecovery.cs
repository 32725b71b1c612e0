using System.Buffers;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.Internal;
using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>
/// Puts what the store recovers at start where it belongs: every message id into its sender's dedup index, every
/// unsettled envelope into its recipient's shard (in memory while it fits, spilled beyond), held receipts back with
/// their senders. Envelopes found expired are collected in <see cref="Expired"/> for the receipt dispatch; envelopes
/// for a partner no longer approved are dropped with a warning naming it.
/// </summary>
internal sealed class QueueRecovery : IRecoverySink
{
    private readonly PartnerDirectory _partners;
    private readonly IEnvelopeStore _store;
    private readonly ILogger _logger;
    private readonly List<SettledEnvelope> _dropped = [];
    private readonly Dictionary<string, long> _gone = [];
    private readonly Action<RecoveryProgress>? _progress;
    private readonly IRecoveredEnvelopes[] _observers;
    private long _held;
    private long _nowMs;

    /// <param name="observers">Told of every replayed envelope (the trace, signed delivery evidence).</param>
    public QueueRecovery(PartnerDirectory partners, IEnvelopeStore store, ILogger logger, Action<RecoveryProgress>? progress = null, params IRecoveredEnvelopes[] observers)
    {
        _partners = partners;
        _store = store;
        _logger = logger;
        _progress = progress;
        _observers = observers;
    }

    /// <summary>Envelopes that expired while the relay was down: their senders get EXPIRED_UNDELIVERED receipts.</summary>
    public List<SettledEnvelope> Expired { get; } = [];

    /// <summary>Replays the store into the partners' queues, dedup indexes and held receipts.</summary>
    public void Run(long nowMs)
    {
        _nowMs = nowMs;
        _store.Recover(this, new PartnerDedupIndexes(_partners), nowMs);
        if (_held > 0)
        {
            StorageLog.ReceiptsHeld(_logger, _held - _dropped.Count, _dropped.Count);
        }
    }

    void IRecoverySink.OnProgress(RecoveryProgress progress) => _progress?.Invoke(progress);

    RecoveredAs IRecoverySink.Recover(in StoredEnvelope envelope, StoredFate fate)
    {
        if (!StoredEnvelopes.TryReadHeader(envelope, out EnvelopeHeader header))
        {
            return RecoveredAs.Unreadable;
        }

        PartnerInfo? sender = StoredEnvelopes.Sender(_partners, envelope.Frame, header);
        sender?.Idempotency.Record(header.MessageId, envelope.AcceptedAtMs, Carried(envelope, header, fate));
        if (_observers.Length > 0)
        {
            PartnerInfo? to = StoredEnvelopes.Recipient(_partners, envelope.Frame, header);
            ReadOnlySequence<byte> frame = envelope.Frame;
            var recovered = new RecoveredEnvelope
            {
                Sender = sender,
                Recipient = to,
                MessageId = header.MessageId,
                AcceptedAtMs = envelope.AcceptedAtMs,
                Shard = to is null ? 0 : StoredEnvelopes.Shard(frame, header, to.Mailbox.Shards.Length),
                FrameBytes = (int)frame.Length,
                SenderUser = frame.Slice(header.SenderUser.Offset, header.SenderUser.Length),
                RecipientUser = frame.Slice(header.RecipientUser.Offset, header.RecipientUser.Length),
                Ciphertext = frame.Slice(header.Ciphertext.Offset, header.Ciphertext.Length),
            };
            foreach (IRecoveredEnvelopes observer in _observers)
            {
                observer.Recovered(recovered);
            }
        }
        switch (fate.Kind)
        {
            case StoredFateKind.Settled:
                return RecoveredAs.Kept;
            case StoredFateKind.Held:
                if (sender is null)
                {
                    return RecoveredAs.Dropped;
                }

                var receipt = new SettledEnvelope(sender, new ReceiptItem(header.MessageId, fate.Status, fate.Code), envelope.Ref);
                sender.HeldReceipts.Hold(new ReadOnlySpan<SettledEnvelope>(in receipt), _dropped);
                _held++;
                return RecoveredAs.Kept;
        }

        PartnerInfo? recipient = StoredEnvelopes.Recipient(_partners, envelope.Frame, header);
        if (recipient is null)
        {
            string name = System.Text.Encoding.UTF8.GetString(envelope.Frame.Slice(header.RecipientPartner.Offset, header.RecipientPartner.Length).ToArray());
            _gone[name] = _gone.GetValueOrDefault(name) + 1;
            return RecoveredAs.Dropped;
        }

        if (fate.Kind == StoredFateKind.Expired)
        {
            Expired.Add(SettledEnvelope.Expired(sender, header.MessageId, envelope.Ref));
            return RecoveredAs.Kept;
        }

        ShardQueue[] shards = recipient.Mailbox.Shards;
        shards[StoredEnvelopes.Shard(envelope.Frame, header, shards.Length)].Restore(envelope, header, sender);
        return RecoveredAs.Kept;
    }

    /// <summary>
    /// Where a recovered envelope went. The log records that an envelope was settled, not how: one settled before its
    /// expiry counts as delivered (a DeliveryAck settles it; an expired one was settled after its expiry).
    /// </summary>
    private CarriedTo Carried(in StoredEnvelope envelope, in EnvelopeHeader header, StoredFate fate)
    {
        bool delivered = fate.Kind switch
        {
            StoredFateKind.Held => fate.Status is Protocol.V1.ReceiptStatus.Delivered or Protocol.V1.ReceiptStatus.Read,
            StoredFateKind.Settled => envelope.ExpiresAtMs > _nowMs,
            _ => false,
        };
        ReadOnlySequence<byte> frame = envelope.Frame;
        Span<byte> partner = stackalloc byte[Math.Min(header.RecipientPartner.Length, 256)];
        if (header.RecipientPartner.Length > partner.Length)
        {
            return default;
        }

        frame.Slice(header.RecipientPartner.Offset, header.RecipientPartner.Length).CopyTo(partner);
        return CarriedTo.Of(partner, frame.Slice(header.SenderUser.Offset, header.SenderUser.Length), frame.Slice(header.RecipientUser.Offset, header.RecipientUser.Length), delivered);
    }

    void IRecoverySink.OnRecovered()
    {
        foreach ((string partner, long count) in _gone)
        {
            StorageLog.RecipientGone(_logger, count, partner);
        }

        _store.Settle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_dropped)); // beyond held_receipts_per_partner
    }
}
