using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Threading.Channels;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Support.Evidence;

/// <summary>
/// The <see cref="ISupportEvents"/> consumer of signed delivery evidence: on the data path it only hashes what the
/// statement needs from the call's slices (the two user ids, keyed by partner, and the ciphertext: SHA-256, about
/// 0.9 us a KiB) and queues a struct; <see cref="EvidenceStore"/> builds, stores and signs the statements off the path.
/// </summary>
/// <remarks>
/// The queue is bounded (<see cref="EvidenceOptions.QueueCapacity"/>): when the writer falls behind, a statement is
/// dropped and counted (<see cref="Dropped"/>), never waited for. Hashing calls OpenSSL directly (<see cref="Evidence.Sha256"/>)
/// into stack or inline buffers: no allocation per message once a thread has its hasher.
/// </remarks>
internal sealed class EvidenceRecorder : ISupportEvents
{
    private static ReadOnlySpan<byte> UserHashPrefix => "relayd-evidence-user-v1\0"u8;

    private readonly ChannelWriter<EvidenceItem> _queue;
    private long _dropped;

    public EvidenceRecorder(ChannelWriter<EvidenceItem> queue) => _queue = queue;

    /// <summary>Statements dropped because the writer's queue was full (the relayd.evidence.dropped counter).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public void EnvelopeAccepted(in AcceptedEnvelope envelope)
    {
        var item = new EvidenceItem { Kind = EvidenceItemKind.Accepted, Sender = envelope.Sender, Recipient = envelope.Recipient, MessageId = envelope.MessageId, AtMs = envelope.AcceptedAtMs };
        UserHash(envelope.Sender.Id, envelope.SenderUser, item.SenderUserHash);
        UserHash(envelope.Recipient.Id, envelope.RecipientUser, item.RecipientUserHash);
        CiphertextHash(envelope.Ciphertext, item.CiphertextSha256);
        Enqueue(item);
    }

    public void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs)
    {
        // Nothing queued: the acknowledgement carries when the Deliver was first written (ShardQueue keeps it).
    }

    public void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long firstSentAtMs, long nowMs)
    {
        // A sender no longer configured has nobody to ask for the evidence: no statement (docs/evidence.md).
        if (sender is not null)
        {
            Enqueue(new EvidenceItem { Kind = EvidenceItemKind.Acknowledged, Sender = sender, Recipient = recipient, MessageId = messageId, AtMs = nowMs, DeliveredAtMs = firstSentAtMs });
        }
    }

    public void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
    {
        if (sender is not null)
        {
            Enqueue(new EvidenceItem { Kind = EvidenceItemKind.Expired, Sender = sender, Recipient = recipient, MessageId = messageId, AtMs = nowMs });
        }
    }

    public void EnvelopeRefusedQueued(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, ErrorCode code, long nowMs)
    {
        if (sender is not null)
        {
            Enqueue(new EvidenceItem { Kind = EvidenceItemKind.Refused, Sender = sender, Recipient = recipient, MessageId = messageId, AtMs = nowMs });
        }
    }

    private void Enqueue(in EvidenceItem item)
    {
        if (!_queue.TryWrite(item))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    /// <summary>SHA-256("relayd-evidence-user-v1\0" || u16 len(partner) || partner || user): <see cref="EvidenceLayouts.UserHash"/>, without allocating.</summary>
    internal static void UserHash(string partner, in ReadOnlySequence<byte> user, Span<byte> destination)
    {
        // One hash call over one buffer: on the stack for the usual short ids, rented for long ones.
        int partnerBytes = Encoding.UTF8.GetByteCount(partner); // ASCII ids (PartnerOptions.IdPattern): one byte each
        if (partnerBytes > ushort.MaxValue)
        {
            throw new ArgumentException("a partner id is at most 65535 bytes", nameof(partner));
        }

        int length = UserHashPrefix.Length + 2 + partnerBytes + checked((int)user.Length);
        byte[]? rented = null;
        Span<byte> input = length <= 512 ? stackalloc byte[512] : (rented = ArrayPool<byte>.Shared.Rent(length));
        UserHashPrefix.CopyTo(input);
        int at = UserHashPrefix.Length;
        BinaryPrimitives.WriteUInt16BigEndian(input[at..], (ushort)partnerBytes);
        at += 2 + Encoding.UTF8.GetBytes(partner, input[(at + 2)..]);
        user.CopyTo(input[at..]);
        Evidence.Sha256.Hash(input[..length], destination);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    internal static void CiphertextHash(in ReadOnlySequence<byte> data, Span<byte> destination)
    {
        Evidence.Sha256.Hash(data, destination);
    }

    public void SessionOpened(PartnerInfo partner, long connectionId, long nowMs)
    {
    }

    public void SessionClosed(PartnerInfo partner, long connectionId, string reason, long nowMs)
    {
    }

    public void EnvelopeRefused(PartnerInfo sender, long connectionId, in ReadOnlySequence<byte> messageId, int frameBytes, ErrorCode code, string detail, long nowMs)
    {
    }

    public void EnvelopeDuplicate(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs)
    {
    }

    public void EnvelopesDurable(PartnerInfo sender, long connectionId, Storage.DurableMark first, Storage.DurableMark through, int envelopes, long nowMs)
    {
    }

    public void ReceiptProduced(PartnerInfo sender, UInt128 messageId, ReceiptStatus status, ErrorCode code, long connectionId, long nowMs)
    {
    }

    public void EnvelopePurged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
    {
    }

    public void MediaEvent(in MediaEventInfo media)
    {
    }

    public void KeyBundleEvent(PartnerInfo requester, PartnerInfo? target, ulong requestId, KeyBundleEventKind kind, ErrorCode status, long nowMs)
    {
    }

    public void AbuseReported(PartnerInfo reporter, PartnerInfo? reported, in ReadOnlySequence<byte> reportId, UInt128 messageId, long nowMs)
    {
    }
}
