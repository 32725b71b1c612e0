using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
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
/// dropped and counted (<see cref="Dropped"/>), never waited for. Hashing uses the thread's hasher (<see cref="ThreadSha256"/>)
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
        Sha256(envelope.Ciphertext, item.CiphertextSha256);
        Enqueue(item);
    }

    public void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs)
    {
        if (sender is not null)
        {
            Enqueue(new EvidenceItem { Kind = EvidenceItemKind.Delivered, Sender = sender, Recipient = recipient, MessageId = messageId, AtMs = nowMs });
        }
    }

    public void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long nowMs)
    {
        // A sender no longer configured has nobody to ask for the evidence: no statement (docs/evidence.md).
        if (sender is not null)
        {
            Enqueue(new EvidenceItem { Kind = EvidenceItemKind.Acknowledged, Sender = sender, Recipient = recipient, MessageId = messageId, AtMs = nowMs });
        }
    }

    public void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
    {
        if (sender is not null)
        {
            Enqueue(new EvidenceItem { Kind = EvidenceItemKind.Expired, Sender = sender, Recipient = recipient, MessageId = messageId, AtMs = nowMs });
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
        // The usual case, short ids: one hash call over a stack buffer (each IncrementalHash append is a call into the
        // crypto library).
        int partnerBytes = partner.Length; // ASCII ids (PartnerOptions.IdPattern); checked below
        if (partnerBytes <= 64 && user.Length <= 256 && System.Text.Ascii.IsValid(partner))
        {
            Span<byte> input = stackalloc byte[24 + 2 + 64 + 256];
            UserHashPrefix.CopyTo(input);
            BinaryPrimitives.WriteUInt16BigEndian(input[24..], (ushort)partnerBytes);
            Encoding.ASCII.GetBytes(partner, input[26..]);
            user.CopyTo(input[(26 + partnerBytes)..]);
            ThreadSha256.Hash(input[..(26 + partnerBytes + (int)user.Length)], destination);
            return;
        }

        IncrementalHash hash = ThreadSha256.Hasher;
        hash.AppendData(UserHashPrefix);
        Span<byte> id = stackalloc byte[2 + 256];
        int length = Encoding.UTF8.GetByteCount(partner);
        if (length <= 256)
        {
            BinaryPrimitives.WriteUInt16BigEndian(id, (ushort)length);
            Encoding.UTF8.GetBytes(partner, id[2..]);
            hash.AppendData(id[..(2 + length)]);
        }
        else
        {
            // Partner ids are at most 63 ASCII bytes (PartnerOptions.IdPattern); kept correct for any string.
            BinaryPrimitives.WriteUInt16BigEndian(id, (ushort)length);
            hash.AppendData(id[..2]);
            hash.AppendData(Encoding.UTF8.GetBytes(partner));
        }

        foreach (ReadOnlyMemory<byte> segment in user)
        {
            hash.AppendData(segment.Span);
        }

        hash.GetHashAndReset(destination);
    }

    internal static void Sha256(in ReadOnlySequence<byte> data, Span<byte> destination)
    {
        ThreadSha256.Hash(data, destination);
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

    public void EnvelopeDurable(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs)
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
