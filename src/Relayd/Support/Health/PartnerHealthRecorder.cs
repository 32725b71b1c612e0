using System.Buffers;
using System.Collections.Concurrent;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Support.Health;

/// <summary>
/// Partner health ("is it us or them?", docs/operations.md "Partner health"): the <see cref="ISupportEvents"/>
/// consumer that keeps, per partner, its sessions, the envelopes accepted from it and refused by code, delivery latency
/// to it, media failures and key-bundle timeouts, in fixed rings of time buckets (<see cref="PartnerHealth"/>). The
/// backlog toward a partner is read from its queues when asked, not counted per envelope.
/// </summary>
/// <remarks>
/// Whose counter an event goes to: an envelope accepted or refused counts for its sender partner; a delivery ack
/// (latency) and an expiry for the recipient partner; a media failure for both partners of the transfer; a key-bundle
/// timeout for the target (it did not answer) and, separately, for the requester. Each partner is told only its own.
/// Recording: one lock-free dictionary read by object identity, then Interlocked adds; nothing allocated.
/// </remarks>
internal sealed class PartnerHealthRecorder : ISupportEvents
{
    private readonly ConcurrentDictionary<PartnerInfo, PartnerHealth> _partners = new(); // PartnerInfo has identity equality
    private readonly ReasonTable _reasons = new();
    private readonly TimeProvider _clock;

    public PartnerHealthRecorder(TimeProvider clock) => _clock = clock;

    /// <summary>The health of <paramref name="partner"/> now, with its backlog read from its queues.</summary>
    public PartnerHealthReport Report(PartnerInfo partner)
    {
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        PartnerHealth health = Of(partner);
        (long envelopes, long? oldest) = partner.Mailbox.Backlog();
        return new PartnerHealthReport
        {
            Partner = partner.Id,
            AtMs = nowMs,
            SessionsNow = health.SessionsNow,
            Counters = health.Read(nowMs, _reasons),
            BacklogEnvelopes = envelopes,
            BacklogOldestAgeMs = oldest is long at ? Math.Max(nowMs - at, 0) : 0,
        };
    }

    public void SessionOpened(PartnerInfo partner, long connectionId, long nowMs) => Of(partner).SessionOpened(connectionId, nowMs);

    public void SessionClosed(PartnerInfo partner, long connectionId, string reason, long nowMs) =>
        Of(partner).SessionClosed(connectionId, _reasons.IndexOf(reason), nowMs);

    public void EnvelopeRefused(PartnerInfo sender, long connectionId, in ReadOnlySequence<byte> messageId, int frameBytes, ErrorCode code, string detail, long nowMs) =>
        Of(sender).Refused(code, nowMs);

    public void EnvelopeAccepted(in AcceptedEnvelope envelope) => Of(envelope.Sender).Accepted(envelope.AcceptedAtMs);

    public void EnvelopeDuplicate(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs)
    {
    }

    public void EnvelopesDurable(PartnerInfo sender, long connectionId, Storage.DurableMark first, Storage.DurableMark through, int envelopes, long nowMs)
    {
    }

    public void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs)
    {
    }

    public void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long firstSentAtMs, long nowMs) =>
        Of(recipient).Delivered(Math.Max(nowMs - acceptedAtMs, 0) * 1000, nowMs);

    public void ReceiptProduced(PartnerInfo sender, UInt128 messageId, ReceiptStatus status, ErrorCode code, long connectionId, long nowMs)
    {
    }

    public void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs) => Of(recipient).Expired(nowMs);

    // Not an admission refusal (those are counted by code): the sender sees it as a REFUSED receipt.
    public void EnvelopeRefusedQueued(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, ErrorCode code, long nowMs)
    {
    }

    public void EnvelopePurged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
    {
    }

    public void MediaEvent(in MediaEventInfo media)
    {
        if (media.Kind != MediaEventKind.Failed)
        {
            return;
        }

        Of(media.Sender).MediaFailed(media.Code, media.NowMs);
        if (media.Recipient is { } recipient && !ReferenceEquals(recipient, media.Sender))
        {
            Of(recipient).MediaFailed(media.Code, media.NowMs);
        }
    }

    public void KeyBundleEvent(PartnerInfo requester, PartnerInfo? target, ulong requestId, KeyBundleEventKind kind, ErrorCode status, long nowMs)
    {
        if (kind != KeyBundleEventKind.TimedOut)
        {
            return;
        }

        Of(requester).KeyBundleTimedOutAsRequester(nowMs);
        if (target is not null)
        {
            Of(target).KeyBundleTimedOutAsTarget(nowMs);
        }
    }

    public void AbuseReported(PartnerInfo reporter, PartnerInfo? reported, in ReadOnlySequence<byte> reportId, UInt128 messageId, long nowMs)
    {
    }

    // A partner's rings are made the first time it is seen (an approved partner: their number is bounded). A partner
    // approved again after a reload removed it is a new object and starts afresh.
    private PartnerHealth Of(PartnerInfo partner) =>
        _partners.TryGetValue(partner, out PartnerHealth? health) ? health : _partners.GetOrAdd(partner, static _ => new PartnerHealth());
}

/// <summary>One partner's health as <see cref="PartnerHealthRecorder.Report"/> found it.</summary>
internal sealed class PartnerHealthReport
{
    public required string Partner { get; init; }

    /// <summary>Relay time of the report (unix ms).</summary>
    public required long AtMs { get; init; }

    public required int SessionsNow { get; init; }

    public required HealthCounters Counters { get; init; }

    /// <summary>Envelopes queued toward the partner (memory and log only), delivered or not, not yet acknowledged.</summary>
    public required long BacklogEnvelopes { get; init; }

    /// <summary>How long the oldest of them has waited; 0 with none.</summary>
    public required long BacklogOldestAgeMs { get; init; }

    /// <summary>The wire form (docs/protocol.md, "Health").</summary>
    public HealthReply ToReply(ulong requestId)
    {
        HealthCounters c = Counters;
        var reply = new HealthReply
        {
            RequestId = requestId,
            PartnerId = Partner,
            SessionsNow = (uint)SessionsNow,
            ConnectsLastHour = (ulong)c.ConnectsLastHour,
            AcceptedLastMinute = (ulong)c.AcceptedLastMinute,
            AcceptedLastHour = (ulong)c.AcceptedLastHour,
            BacklogEnvelopes = (ulong)BacklogEnvelopes,
            BacklogOldestAgeMs = (ulong)BacklogOldestAgeMs,
            DeliveryLatencyP50Us = (ulong)c.Latency.P50Us,
            DeliveryLatencyP90Us = (ulong)c.Latency.P90Us,
            DeliveryLatencyP99Us = (ulong)c.Latency.P99Us,
            DeliveryLatencyMaxUs = (ulong)c.Latency.MaxUs,
            DeliveriesLast5Minutes = (ulong)c.Latency.Count,
            KeyBundleTimeoutsLastHour = (ulong)c.KeyBundleTimeoutsLastHour,
            KeyBundleRequestsTimedOutLastHour = (ulong)c.KeyBundleRequestsTimedOutLastHour,
            ExpiredLastHour = (ulong)c.ExpiredLastHour,
        };
        reply.DisconnectsLastHour.AddRange(c.DisconnectsLastHour.Select(d => new ReasonCount { Reason = d.Reason, Count = (ulong)d.Count }));
        reply.RefusedLastMinute.AddRange(c.RefusedLastMinute.Select(ToCodeCount));
        reply.RefusedLastHour.AddRange(c.RefusedLastHour.Select(ToCodeCount));
        reply.MediaFailuresLastHour.AddRange(c.MediaFailuresLastHour.Select(ToCodeCount));
        return reply;
    }

    private static CodeCount ToCodeCount((ErrorCode Code, long Count) c) => new() { Code = c.Code, Count = (ulong)c.Count };
}
