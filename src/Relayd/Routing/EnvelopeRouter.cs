using System.Buffers;
using System.Diagnostics;
using System.IO.Hashing;
using Relayd.Admission;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>
/// The answer to one envelope: accepted (with its Ack time and the store's mark its Ack waits for), refused with a
/// code, or <see cref="LogBusy"/> (retry the same envelope once the store has buffer space).
/// </summary>
internal readonly record struct RouteOutcome(ErrorCode Refusal, long AcceptedAtMs, bool Duplicate, DurableMark DurableAt, string? Detail = null)
{
    public bool Accepted => Refusal == ErrorCode.Unspecified && !LogBusy;

    public bool LogBusy { get; init; }

    /// <summary>The refusing rule's retry-after (e.g. RATE_LIMITED's, from its bucket); 0 = none given.</summary>
    public uint RetryAfterMs { get; init; }

    public static RouteOutcome Refused(ErrorCode code, string detail, uint retryAfterMs = 0) =>
        new(code, 0, false, DurableMark.None, detail) { RetryAfterMs = retryAfterMs };
}

/// <summary>
/// The route step: checks an envelope against the interop rules, appends it to the envelope store and puts it into
/// the recipient's shard queue. Allocates nothing for an accepted envelope.
/// </summary>
internal sealed class EnvelopeRouter
{
    private readonly PartnerDirectory _partners;
    private readonly IEnvelopeStore _store;
    private readonly TimeProvider _clock;
    private readonly long _retentionMs;
    private readonly AdmissionPipeline _admission;
    private readonly IConsentPolicy _consent;
    private readonly Routing.SupportEvents _support;

    public EnvelopeRouter(PartnerDirectory partners, IEnvelopeStore store, RelayLimits limits, TimeProvider clock, InteropPolicy? interop = null, Routing.SupportEvents? support = null)
    {
        _support = support ?? Routing.SupportEvents.None;
        _partners = partners;
        _store = store;
        _clock = clock;
        _retentionMs = (long)limits.DefaultRetention.TotalMilliseconds;
        _admission = AdmissionPipelines.Envelopes(limits, interop ?? InteropPolicy.None);
        _consent = (interop ?? InteropPolicy.None).Consent;
    }

    /// <summary>Shard of a conversation: stable across processes (xxHash3), so a later on-disk log can rely on it.</summary>
    public static int ShardOf(in ReadOnlySequence<byte> recipientUser, int shardCount) =>
        (int)(Internal.SequenceHash.XxHash3(recipientUser) % (ulong)shardCount);

    /// <param name="connectionId">The sender's session, for the support events (0: none, e.g. a benchmark).</param>
    /// <param name="rateLimitTaken">The envelope is routed again after <see cref="RouteOutcome.LogBusy"/>: its rate-limit tokens were taken then.</param>
    public RouteOutcome Route(PartnerInfo sender, in ReadOnlySequence<byte> frame, in EnvelopeHeader header, long connectionId = 0, bool rateLimitTaken = false)
    {
        RouteOutcome outcome = AdmitAndAppend(sender, frame, header, connectionId, rateLimitTaken);

        // A segment taken by this append asks for a disk probe: run here, with none of the route's locks held.
        _store.CheckSpaceIfDue();
        return outcome;
    }

    private RouteOutcome AdmitAndAppend(PartnerInfo sender, in ReadOnlySequence<byte> frame, in EnvelopeHeader header, long connectionId, bool rateLimitTaken)
    {
        // The dedup lookup comes after the admission rules; its chain head is fetched from memory meanwhile.
        IdempotencyIndex dedup = sender.Idempotency;
        IdempotencyIndex.IdProbe probe = IdempotencyIndex.Probe(header.MessageId);
        dedup.Prefetch(probe);
        PartnerInfo? recipient = _partners.Find(frame.Slice(header.RecipientPartner.Offset, header.RecipientPartner.Length));
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        int consentEpoch = _consent.RevokeEpoch; // before the opt-in check: a revoke after it makes the queue check again
        var request = new AdmissionRequest
        {
            Subject = AdmissionSubject.Envelope,
            Sender = sender,
            SenderPartnerUtf8 = frame.Slice(header.SenderPartner.Offset, header.SenderPartner.Length),
            MessageIdLength = header.MessageIdSlice.Length,
            RecipientUserEmpty = header.RecipientUser.IsEmpty,
            Recipient = recipient,
            ContentKind = header.ContentKind,
            SenderUser = frame.Slice(header.SenderUser.Offset, header.SenderUser.Length),
            RecipientUser = frame.Slice(header.RecipientUser.Offset, header.RecipientUser.Length),
            Bytes = frame.Length,
            RecipientFrameBytes = WireFrames.MaxDeliverFrameBodyBytes(header.Envelope.Length),
            ExpiresAtMs = header.ExpiresAtMs,
            NowMs = now,
            StorageFull = _store.IsFull,
            RateLimitTaken = rateLimitTaken,
        };
        if (!_admission.Admit(request, out AdmissionRefusal refusal))
        {
            return RouteOutcome.Refused(refusal.Code, refusal.Detail, refusal.RetryAfterMs);
        }

        Debug.Assert(recipient is not null, "admitted: the recipient rule refuses an unknown recipient_partner");
        long expiresAt = header.ExpiresAtMs != 0 ? Math.Min(now + _retentionMs, header.ExpiresAtMs) : now + _retentionMs;

        lock (dedup.SyncRoot)
        {
            if (dedup.TryGet(probe, now, out IdempotencyIndex.Accepted original))
            {
                // Its Ack waits for everything appended so far, the original among it (durable already, most often:
                // then it goes out at once). The index keeps no mark per id: 8 bytes less per remembered id.
                return new RouteOutcome(ErrorCode.Unspecified, original.AcceptedAtMs, Duplicate: true, _store.AppendedEnd);
            }

            if (!_admission.AdmitNew(request, out refusal))
            {
                return RouteOutcome.Refused(refusal.Code, refusal.Detail, refusal.RetryAfterMs);
            }

            ShardQueue[] shards = recipient.Mailbox.Shards;
            int shard = ShardOf(request.RecipientUser, shards.Length);
            switch (shards[shard].TryAppend(_store, frame, header, sender, now, expiresAt, consentEpoch, out DurableMark durableAt, new Routing.AcceptedReport(_support, recipient, connectionId)))
            {
                case AppendResult.Busy:
                    return new RouteOutcome(ErrorCode.Unspecified, 0, false, DurableMark.None) { LogBusy = true };
                case AppendResult.Full:
                    return RouteOutcome.Refused(ErrorCode.StorageFull, "the relay's disk is full; retry later");
                case AppendResult.Failed:
                    return RouteOutcome.Refused(ErrorCode.RetryLater, "the relay's storage failed and the relay is stopping; retry on another connection later");
            }

            dedup.Record(probe, now, CarriedTo.Of(recipient.IdUtf8, request.SenderUser, request.RecipientUser));
            return new RouteOutcome(ErrorCode.Unspecified, now, Duplicate: false, durableAt);
        }
    }
}
