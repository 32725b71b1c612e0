using System.Buffers;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Relayd.Delivery;
using Relayd.Protocol.V1;
using Relayd.Diagnostics;
using Relayd.Routing;
using Relayd.Wal;

namespace Relayd.Storage;

/// <summary>
/// Rebuilds the relay's state from the log at start, before it listens: the dedup indexes (snapshot, then every
/// envelope record), and the shard queues with every envelope not yet settled, in log order (so in conversation
/// order). Memory stays bounded: a shard takes envelopes while they fit and leaves the rest in the log.
/// </summary>
internal static class StoreRecovery
{
    /// <summary>Replays the log; envelopes found expired are settled and their receipts added to <paramref name="expired"/>.</summary>
    public static void Run(MessageStore store, PartnerDirectory partners, long nowMs, List<SettledEnvelope> expired, ILogger logger)
    {
        var stopwatch = Stopwatch.StartNew();
        int dedup = DedupSnapshot.Load(store.Options.Directory, partners);

        // Pass 1: what was settled, and which receipts were held. Pass 2 then streams the envelopes in order without
        // holding them.
        var settled = new HashSet<ulong>();
        var held = new Dictionary<ulong, (ReceiptStatus Status, ErrorCode Code)>();
        var buffer = new WalReadBuffer();
        foreach (WalRecord record in store.Log.ReadAll(default, buffer))
        {
            ReadOnlySpan<byte> entries = record.Payload.Span;
            if (record.Type == StoredRecords.Settled)
            {
                for (int i = 0; i + sizeof(ulong) <= entries.Length; i += sizeof(ulong))
                {
                    settled.Add(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(entries[i..]));
                }
            }
            else if (record.Type == StoredRecords.HeldReceipts)
            {
                for (int i = 0; i + StoredRecords.HeldReceiptBytes <= entries.Length; i += StoredRecords.HeldReceiptBytes)
                {
                    (ulong position, ReceiptStatus status, ErrorCode code) = StoredRecords.ReadHeldReceipt(entries[i..]);
                    held[position] = (status, code);
                }
            }
        }

        long heldCount = 0;
        var dropped = new List<SettledEnvelope>();

        long live = 0;
        long settledCount = 0;
        var gone = new Dictionary<string, long>();
        foreach (WalRecord record in store.Log.ReadAll(default, buffer))
        {
            if (record.Type != StoredRecords.Envelope)
            {
                continue;
            }

            if (!StoredRecords.TryReadEnvelope(record.Payload, out StoredEnvelope envelope))
            {
                throw new InvalidDataException($"the envelope record at {record.Position} of the write-ahead log in {store.Options.Directory} has a valid checksum but cannot be read (written by an incompatible version?)");
            }

            EnvelopeHeader header = envelope.Header;
            PartnerInfo? sender = envelope.Sender(partners);
            sender?.Idempotency.Record(header.MessageId, envelope.AcceptedAtMs, durableAt: 0);
            dedup++;

            ulong position = record.Position.ToUInt64();
            if (settled.Contains(position))
            {
                settledCount++;
                continue;
            }

            if (held.TryGetValue(position, out (ReceiptStatus Status, ErrorCode Code) fate))
            {
                // Settled while its sender was away: hold the receipt again; the segment stays until a session takes it.
                settled.Add(position);
                settledCount++;
                if (sender is not null)
                {
                    store.Usage.Add(record.Position.Segment);
                    var receipt = new SettledEnvelope(sender.Index, new ReceiptItem(header.MessageId, fate.Status, fate.Code), position);
                    sender.HeldReceipts.Hold(new ReadOnlySpan<SettledEnvelope>(in receipt), dropped);
                    heldCount++;
                }

                continue;
            }

            PartnerInfo? recipient = envelope.Recipient(partners);
            if (recipient is null)
            {
                string name = System.Text.Encoding.UTF8.GetString(envelope.Frame.Slice(header.RecipientPartner.Offset, header.RecipientPartner.Length).ToArray());
                gone[name] = gone.GetValueOrDefault(name) + 1;
                continue;
            }

            store.Usage.Add(record.Position.Segment);
            if (envelope.ExpiresAtMs <= nowMs)
            {
                settled.Add(position); // not part of any shard's backlog
                expired.Add(SettledEnvelope.Expired(sender?.Index ?? -1, header.MessageId, position));
                continue;
            }

            ShardQueue[] shards = recipient.Mailbox.Shards;
            shards[envelope.Shard(shards.Length)].Restore(envelope, sender?.Index ?? -1, record.Position);
            live++;
        }

        foreach ((string partner, long count) in gone)
        {
            StorageLog.RecipientGone(logger, count, partner);
        }

        store.SettledBeforeStart = settled;
        store.Settle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(dropped)); // beyond held_receipts_per_partner
        StorageLog.Recovered(logger, store.Options.Directory, live, settledCount, expired.Count, dedup, stopwatch.Elapsed.TotalMilliseconds);
        if (heldCount > 0)
        {
            StorageLog.ReceiptsHeld(logger, heldCount - dropped.Count, dropped.Count);
        }
    }
}
