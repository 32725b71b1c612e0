using System.Buffers;
using System.Buffers.Binary;
using Relayd.Delivery;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Storage;

/// <summary>
/// The relay's record types in the write-ahead log (see docs/wal.md, "Relay records"). The log itself only knows
/// typed payloads; this is what the payloads mean.
/// </summary>
internal static class StoredRecords
{
    /// <summary>
    /// An accepted envelope: <c>[accepted_at_ms i64][expires_at_ms i64]</c> followed by the Frame exactly as the
    /// sender's envelope frame was read (one field, <c>envelope</c>), so recovery reads it with <see cref="EnvelopeHeader"/>.
    /// </summary>
    public const byte Envelope = 1;

    /// <summary>
    /// Envelopes settled (acknowledged by the recipient, or expired): the positions of their Envelope records,
    /// <c>u64</c> each. Settled envelopes are not delivered again after a restart.
    /// </summary>
    public const byte Settled = 2;

    /// <summary>
    /// Envelopes settled whose receipts wait for their sender partner to connect: <c>[position u64][status i32][code
    /// i32]</c> each. They are not delivered again; recovery holds their receipts again, and their segments stay until
    /// a Settled record follows (written once a session of the sender has taken the receipts).
    /// </summary>
    public const byte HeldReceipts = 3;

    /// <summary>Bytes of one entry of a <see cref="HeldReceipts"/> record.</summary>
    public const int HeldReceiptBytes = 16;

    public const int EnvelopePrefixBytes = 16;

    /// <summary>Positions per Settled record; keeps a record far below the smallest segment.</summary>
    public const int MaxSettledPerRecord = 8192;

    public static void WriteEnvelopePrefix(Span<byte> prefix, long acceptedAtMs, long expiresAtMs)
    {
        BinaryPrimitives.WriteInt64LittleEndian(prefix, acceptedAtMs);
        BinaryPrimitives.WriteInt64LittleEndian(prefix[8..], expiresAtMs);
    }

    public static void WriteHeldReceipt(Span<byte> entry, in SettledEnvelope settled)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(entry, settled.WalPosition);
        BinaryPrimitives.WriteInt32LittleEndian(entry[8..], (int)settled.Receipt.Status);
        BinaryPrimitives.WriteInt32LittleEndian(entry[12..], (int)settled.Receipt.Code);
    }

    /// <summary>Reads one entry of a <see cref="HeldReceipts"/> record: the envelope's position and its receipt's fate.</summary>
    public static (ulong Position, ReceiptStatus Status, ErrorCode Code) ReadHeldReceipt(ReadOnlySpan<byte> entry) =>
        (BinaryPrimitives.ReadUInt64LittleEndian(entry),
         (ReceiptStatus)BinaryPrimitives.ReadInt32LittleEndian(entry[8..]),
         (ErrorCode)BinaryPrimitives.ReadInt32LittleEndian(entry[12..]));

    /// <summary>Reads an Envelope record's payload back into its times, frame and routing header.</summary>
    public static bool TryReadEnvelope(ReadOnlyMemory<byte> payload, out StoredEnvelope envelope)
    {
        envelope = default;
        if (payload.Length <= EnvelopePrefixBytes)
        {
            return false;
        }

        ReadOnlySpan<byte> span = payload.Span;
        var frame = new ReadOnlySequence<byte>(payload[EnvelopePrefixBytes..]);
        EnvelopeHeader header;
        try
        {
            if (!EnvelopeHeader.TryRead(frame, out header) || !header.HasValidMessageId)
            {
                return false;
            }
        }
        catch (Relayd.Protocol.RelayException)
        {
            // Only a relay from before the strict reader stored such an envelope (one stock parsers read differently):
            // unreadable now, like any record of an incompatible version.
            return false;
        }

        envelope = new StoredEnvelope(
            BinaryPrimitives.ReadInt64LittleEndian(span),
            BinaryPrimitives.ReadInt64LittleEndian(span[8..]),
            frame,
            header);
        return true;
    }
}

/// <summary>An envelope as recovery or the backlog loader reads it from the log.</summary>
internal readonly record struct StoredEnvelope(long AcceptedAtMs, long ExpiresAtMs, ReadOnlySequence<byte> Frame, EnvelopeHeader Header)
{
    /// <summary>The approved partner that sent it, or null when it is no longer approved.</summary>
    public PartnerInfo? Sender(PartnerDirectory partners) => partners.Find(Frame.Slice(Header.SenderPartner.Offset, Header.SenderPartner.Length));

    /// <summary>The approved partner it is for, or null when it is no longer approved.</summary>
    public PartnerInfo? Recipient(PartnerDirectory partners) => partners.Find(Frame.Slice(Header.RecipientPartner.Offset, Header.RecipientPartner.Length));

    /// <summary>The shard of its conversation among <paramref name="shardCount"/> (as the route step chose it).</summary>
    public int Shard(int shardCount) => EnvelopeRouter.ShardOf(Frame.Slice(Header.RecipientUser.Offset, Header.RecipientUser.Length), shardCount);
}
