using System.Buffers;
using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// What happens to each message at the relay, as the shared-support features see it (trace, partner health, signed
/// delivery evidence): one seam called from the data path at each step, fanned out by <see cref="SupportEvents"/>.
/// </summary>
/// <remarks>
/// Implementations run on the data path (a session's reader or writer loop, the queue maintenance, the receipt
/// dispatcher): they must not block, must not throw, and allocate nothing per envelope in steady state. Slices
/// (<see cref="ReadOnlySequence{T}"/>) are valid only for the duration of the call: copy or hash what is kept.
/// User ids are opaque bytes and may be kept only hashed. Ciphertext is never kept; it is passed only so evidence can
/// hash it.
/// </remarks>
internal interface ISupportEvents
{
    /// <summary>A session of <paramref name="partner"/> completed its handshake.</summary>
    void SessionOpened(PartnerInfo partner, long connectionId, long nowMs);

    /// <summary>A session of <paramref name="partner"/> ended; <paramref name="reason"/> is a short stable word (e.g. "idle", "goaway", "error", "eof", "stopping").</summary>
    void SessionClosed(PartnerInfo partner, long connectionId, string reason, long nowMs);

    /// <summary>An envelope was refused (nothing stored). <paramref name="messageId"/> is the frame's message_id (any length, possibly empty).</summary>
    void EnvelopeRefused(PartnerInfo sender, long connectionId, in ReadOnlySequence<byte> messageId, int frameBytes, ErrorCode code, string detail, long nowMs);

    /// <summary>An envelope was accepted: appended to the log (not yet durable) and queued.</summary>
    void EnvelopeAccepted(in AcceptedEnvelope envelope);

    /// <summary>A resend of an accepted message id was answered with its original Ack.</summary>
    void EnvelopeDuplicate(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs);

    /// <summary>
    /// The session's writer sent Acks for <paramref name="envelopes"/> envelopes it accepted (not duplicates): each is
    /// durable (fdatasync'ed). Once per batch of Acks, not per envelope: they are those of this session whose
    /// <see cref="AcceptedEnvelope.DurableAt"/> lies from <paramref name="first"/> to <paramref name="through"/>
    /// (a session's marks grow in the order it accepted).
    /// </summary>
    void EnvelopesDurable(PartnerInfo sender, long connectionId, Storage.DurableMark first, Storage.DurableMark through, int envelopes, long nowMs);

    /// <summary>An envelope was written to a session of its recipient partner as a Deliver.</summary>
    void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs);

    /// <summary>
    /// The recipient partner acknowledged a delivery. <paramref name="acceptedAtMs"/> is when the relay accepted it (for
    /// latency); <paramref name="firstSentAtMs"/> when this run of the relay first wrote a Deliver of it (0 if unknown).
    /// </summary>
    void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long firstSentAtMs, long nowMs);

    /// <summary>A receipt was produced for the sender: handed to a session (<paramref name="connectionId"/>) or held (0) until one connects.</summary>
    void ReceiptProduced(PartnerInfo sender, UInt128 messageId, ReceiptStatus status, ErrorCode code, long connectionId, long nowMs);

    /// <summary>An envelope expired undelivered in a queue of <paramref name="recipient"/>.</summary>
    void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs);

    /// <summary>
    /// An accepted envelope queued for <paramref name="recipient"/> was settled undelivered with a REFUSED receipt
    /// (<paramref name="code"/>: NOT_OPTED_IN, a user's consent was revoked while it waited).
    /// </summary>
    void EnvelopeRefusedQueued(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, ErrorCode code, long nowMs);

    /// <summary>An operator purged envelopes queued for <paramref name="recipient"/>.</summary>
    void EnvelopePurged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs);

    /// <summary>A media transfer event (opened, progress, complete, delivered, received, failed).</summary>
    void MediaEvent(in MediaEventInfo media);

    /// <summary>A key-bundle request event: forwarded, answered (with its status) or timed out.</summary>
    void KeyBundleEvent(PartnerInfo requester, PartnerInfo? target, ulong requestId, KeyBundleEventKind kind, ErrorCode status, long nowMs);

    /// <summary>An abuse report was stored (and its notice queued for the reported user's provider).</summary>
    void AbuseReported(PartnerInfo reporter, PartnerInfo? reported, in ReadOnlySequence<byte> reportId, UInt128 messageId, long nowMs);
}

/// <summary>An accepted envelope, as <see cref="ISupportEvents.EnvelopeAccepted"/> sees it: slices of the frame, valid during the call only.</summary>
internal readonly ref struct AcceptedEnvelope
{
    public required PartnerInfo Sender { get; init; }

    public required long ConnectionId { get; init; }

    public required UInt128 MessageId { get; init; }

    public required PartnerInfo Recipient { get; init; }

    /// <summary>Opaque; hash it before keeping anything.</summary>
    public required ReadOnlySequence<byte> SenderUser { get; init; }

    /// <summary>Opaque; hash it before keeping anything.</summary>
    public required ReadOnlySequence<byte> RecipientUser { get; init; }

    /// <summary>The envelope's ciphertext field: what evidence hashes (SHA-256). Never kept, never logged.</summary>
    public required ReadOnlySequence<byte> Ciphertext { get; init; }

    /// <summary>Bytes of the Envelope frame.</summary>
    public required int FrameBytes { get; init; }

    public required int Shard { get; init; }

    /// <summary>True when the shard queue holds it only in the log (spilled), not in memory.</summary>
    public required bool LogOnly { get; init; }

    public required long AcceptedAtMs { get; init; }

    /// <summary>The store's mark its Ack waits for: <see cref="ISupportEvents.EnvelopesDurable"/> names a range of them.</summary>
    public Storage.DurableMark DurableAt { get; init; }
}

internal enum MediaEventKind
{
    Opened,
    Progress,
    Complete,
    Delivered,
    Received,
    Failed,
}

internal readonly record struct MediaEventInfo(
    MediaEventKind Kind, PartnerInfo Sender, PartnerInfo? Recipient, UInt128 TransferId, long Bytes, long TotalBytes, ErrorCode Code, string? Detail, long ConnectionId, long NowMs);

internal enum KeyBundleEventKind
{
    Forwarded,
    Answered,
    TimedOut,
}
