using System.Buffers;
using System.IO.Hashing;
using Relayd.Protocol.V1;
using Relayd.Storage;
using Relayd.Wal;

namespace Relayd.Routing;

/// <summary>
/// The answer to one envelope: accepted (with its Ack time and the log position its Ack waits for), refused with a
/// code, or <see cref="LogBusy"/> (retry the same envelope once the log has buffer space).
/// </summary>
internal readonly record struct RouteOutcome(ErrorCode Refusal, long AcceptedAtMs, bool Duplicate, ulong DurableAt, string? Detail = null)
{
    public bool Accepted => Refusal == ErrorCode.Unspecified && !LogBusy;

    public bool LogBusy { get; init; }

    public static RouteOutcome Refused(ErrorCode code, string detail) => new(code, 0, false, 0, detail);
}

/// <summary>
/// The route step: checks an envelope against the interop rules, appends it to the write-ahead log and puts it into
/// the recipient's shard queue. Allocates nothing for an accepted envelope.
/// </summary>
internal sealed class EnvelopeRouter
{
    private readonly PartnerDirectory _partners;
    private readonly MessageStore _store;
    private readonly TimeProvider _clock;
    private readonly long _retentionMs;

    public EnvelopeRouter(PartnerDirectory partners, MessageStore store, RelayLimits limits, TimeProvider clock)
    {
        _partners = partners;
        _store = store;
        _clock = clock;
        _retentionMs = (long)limits.DefaultRetention.TotalMilliseconds;
    }

    /// <summary>Shard of a conversation: stable across processes (xxHash3), so a later on-disk log can rely on it.</summary>
    public static int ShardOf(in ReadOnlySequence<byte> recipientUser, int shardCount)
    {
        ulong hash;
        if (recipientUser.IsSingleSegment)
        {
            hash = XxHash3.HashToUInt64(recipientUser.FirstSpan);
        }
        else if (recipientUser.Length <= 1024)
        {
            Span<byte> copy = stackalloc byte[(int)recipientUser.Length];
            recipientUser.CopyTo(copy);
            hash = XxHash3.HashToUInt64(copy);
        }
        else
        {
            hash = XxHash3.HashToUInt64(recipientUser.ToArray());
        }

        return (int)(hash % (ulong)shardCount);
    }

    public RouteOutcome Route(PartnerInfo sender, in ReadOnlySequence<byte> frame, in EnvelopeHeader header)
    {
        RouteOutcome outcome = AdmitAndAppend(sender, frame, header);

        // A segment taken by this append asks for a disk probe: run here, with none of the route's locks held.
        _store.CheckSpaceIfDue();
        return outcome;
    }

    private RouteOutcome AdmitAndAppend(PartnerInfo sender, in ReadOnlySequence<byte> frame, in EnvelopeHeader header)
    {
        if (!SequenceEquals(frame.Slice(header.SenderPartner.Offset, header.SenderPartner.Length), sender.IdUtf8))
        {
            return RouteOutcome.Refused(ErrorCode.SenderMismatch, $"sender_partner is not the authenticated partner '{sender.Id}'");
        }

        if (!header.HasValidMessageId)
        {
            return RouteOutcome.Refused(ErrorCode.InvalidEnvelope, $"message_id must be {EnvelopeHeader.MessageIdBytes} bytes, got {header.MessageIdSlice.Length}");
        }

        if (header.RecipientUser.IsEmpty)
        {
            return RouteOutcome.Refused(ErrorCode.InvalidEnvelope, "recipient_user is empty");
        }

        PartnerInfo? recipient = _partners.Find(frame.Slice(header.RecipientPartner.Offset, header.RecipientPartner.Length));
        if (recipient is null)
        {
            return RouteOutcome.Refused(ErrorCode.UnknownRecipientPartner, "recipient_partner is not an approved partner of this relay");
        }

        if (!recipient.Accepts(header.ContentKind))
        {
            return RouteOutcome.Refused(ErrorCode.ContentKindUnsupported, recipient.KindRefusal(header.ContentKind));
        }

        int recipientFrameLimit = recipient.Mailbox.Declared.MaxFrameBytes;
        if (recipientFrameLimit != 0 && Delivery.WireFrames.MaxDeliverFrameBodyBytes(header.Envelope.Length) > recipientFrameLimit)
        {
            return RouteOutcome.Refused(ErrorCode.FrameTooLarge, $"the Deliver frame of this envelope takes up to {Delivery.WireFrames.MaxDeliverFrameBodyBytes(header.Envelope.Length)} bytes; partner '{recipient.Id}' reads frames of at most {recipientFrameLimit} bytes (its Hello.max_frame_bytes)");
        }

        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        long expiresAt = now + _retentionMs;
        if (header.ExpiresAtMs != 0)
        {
            if (header.ExpiresAtMs <= now)
            {
                return RouteOutcome.Refused(ErrorCode.Expired, "expires_at_ms is in the past");
            }

            expiresAt = Math.Min(expiresAt, header.ExpiresAtMs);
        }

        IdempotencyIndex dedup = sender.Idempotency;
        lock (dedup.SyncRoot)
        {
            if (dedup.TryGet(header.MessageId, now, out IdempotencyIndex.Accepted original))
            {
                return new RouteOutcome(ErrorCode.Unspecified, original.AcceptedAtMs, Duplicate: true, original.DurableAt);
            }

            // Checked after dedup: a resend of something already stored still gets its Ack while the disk is full.
            if (_store.IsFull)
            {
                return RouteOutcome.Refused(ErrorCode.StorageFull, "the relay's disk is below its reserve; retry later");
            }

            ShardQueue[] shards = recipient.Mailbox.Shards;
            int shard = ShardOf(frame.Slice(header.RecipientUser.Offset, header.RecipientUser.Length), shards.Length);
            WalPosition position;
            try
            {
                if (shards[shard].TryAppend(_store, frame, header, sender.Index, now, expiresAt, out position) == AppendResult.LogBusy)
                {
                    return new RouteOutcome(ErrorCode.Unspecified, 0, false, 0) { LogBusy = true };
                }
            }
            catch (WalDiskFullException)
            {
                return RouteOutcome.Refused(ErrorCode.StorageFull, "the relay's disk is full; retry later");
            }
            catch (WalFailedException)
            {
                return RouteOutcome.Refused(ErrorCode.RetryLater, "the relay's storage failed and the relay is stopping; retry on another connection later");
            }

            ulong durableAt = MessageStore.DurableAt(position, frame.Length);
            dedup.Record(header.MessageId, now, durableAt);
            return new RouteOutcome(ErrorCode.Unspecified, now, Duplicate: false, durableAt);
        }
    }

    private static bool SequenceEquals(in ReadOnlySequence<byte> value, ReadOnlySpan<byte> expected) =>
        value.IsSingleSegment ? value.FirstSpan.SequenceEqual(expected) : value.Length == expected.Length && SlowEquals(value, expected);

    private static bool SlowEquals(in ReadOnlySequence<byte> value, ReadOnlySpan<byte> expected)
    {
        Span<byte> copy = stackalloc byte[expected.Length];
        value.CopyTo(copy);
        return copy.SequenceEqual(expected);
    }
}
