using System.Buffers;
using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// The one <see cref="ISupportEvents"/> the data path calls: hands each event to every consumer (trace, partner
/// health, evidence). An array loop rather than a multicast delegate: no allocation, and consumers are fixed at start.
/// </summary>
internal sealed class SupportEvents : ISupportEvents
{
    private readonly ISupportEvents[] _consumers;

    public SupportEvents(params ISupportEvents[] consumers) => _consumers = consumers;

    /// <summary>No consumer: what tests and tools that build a relay without the support features use.</summary>
    public static SupportEvents None { get; } = new();

    public bool IsEmpty => _consumers.Length == 0;

    public void SessionOpened(PartnerInfo partner, long connectionId, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.SessionOpened(partner, connectionId, nowMs);
        }
    }

    public void SessionClosed(PartnerInfo partner, long connectionId, string reason, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.SessionClosed(partner, connectionId, reason, nowMs);
        }
    }

    public void EnvelopeRefused(PartnerInfo sender, long connectionId, in ReadOnlySequence<byte> messageId, int frameBytes, ErrorCode code, string detail, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopeRefused(sender, connectionId, messageId, frameBytes, code, detail, nowMs);
        }
    }

    public void EnvelopeAccepted(in AcceptedEnvelope envelope)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopeAccepted(envelope);
        }
    }

    public void EnvelopeDuplicate(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopeDuplicate(sender, connectionId, messageId, nowMs);
        }
    }

    public void EnvelopesDurable(PartnerInfo sender, long connectionId, Storage.DurableMark first, Storage.DurableMark through, int envelopes, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopesDurable(sender, connectionId, first, through, envelopes, nowMs);
        }
    }

    public void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopeDelivered(sender, messageId, recipient, connectionId, deliveryId, nowMs);
        }
    }

    public void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long firstSentAtMs, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopeAcknowledged(sender, messageId, recipient, connectionId, deliveryId, acceptedAtMs, firstSentAtMs, nowMs);
        }
    }

    public void ReceiptProduced(PartnerInfo sender, UInt128 messageId, ReceiptStatus status, ErrorCode code, long connectionId, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.ReceiptProduced(sender, messageId, status, code, connectionId, nowMs);
        }
    }

    public void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopeExpired(sender, messageId, recipient, nowMs);
        }
    }

    public void EnvelopeRefusedQueued(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, ErrorCode code, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopeRefusedQueued(sender, messageId, recipient, code, nowMs);
        }
    }

    public void EnvelopePurged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.EnvelopePurged(sender, messageId, recipient, nowMs);
        }
    }

    public void MediaEvent(in MediaEventInfo media)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.MediaEvent(media);
        }
    }

    public void KeyBundleEvent(PartnerInfo requester, PartnerInfo? target, ulong requestId, KeyBundleEventKind kind, ErrorCode status, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.KeyBundleEvent(requester, target, requestId, kind, status, nowMs);
        }
    }

    public void AbuseReported(PartnerInfo reporter, PartnerInfo? reported, in ReadOnlySequence<byte> reportId, UInt128 messageId, long nowMs)
    {
        foreach (ISupportEvents consumer in _consumers)
        {
            consumer.AbuseReported(reporter, reported, reportId, messageId, nowMs);
        }
    }
}
