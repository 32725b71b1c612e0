using System.Buffers;
using System.Buffers.Binary;
using Relayd.Protocol.V1;
using Relayd.Wal;

namespace Relayd.Storage.WalStore;

/// <summary>
/// The relay's record types in the write-ahead log (see docs/wal.md, "Relay records"). The log itself only knows
/// typed payloads; this is what the payloads mean.
/// </summary>
internal static class StoredRecords
{
    /// <summary>
    /// An accepted envelope: <c>[accepted_at_ms i64][expires_at_ms i64]</c> followed by the Frame exactly as the
    /// sender's envelope frame was read (one field, <c>envelope</c>), so the layer above reads it as it read the frame.
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

    public static void WriteHeldReceipt(Span<byte> entry, in HeldReceiptEntry held)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(entry, held.Envelope.Value);
        BinaryPrimitives.WriteInt32LittleEndian(entry[8..], (int)held.Status);
        BinaryPrimitives.WriteInt32LittleEndian(entry[12..], (int)held.Code);
    }

    /// <summary>Reads one entry of a <see cref="HeldReceipts"/> record: the envelope's position and its receipt's fate.</summary>
    public static (ulong Position, ReceiptStatus Status, ErrorCode Code) ReadHeldReceipt(ReadOnlySpan<byte> entry) =>
        (BinaryPrimitives.ReadUInt64LittleEndian(entry),
         (ReceiptStatus)BinaryPrimitives.ReadInt32LittleEndian(entry[8..]),
         (ErrorCode)BinaryPrimitives.ReadInt32LittleEndian(entry[12..]));

    /// <summary>
    /// Reads an Envelope record back into its times and frame; false when the payload is too short to hold a frame.
    /// Its <see cref="StoredEnvelope.Next"/> is the position after the record, where a read resumes.
    /// </summary>
    public static bool TryReadEnvelope(in WalRecord record, out StoredEnvelope envelope)
    {
        envelope = default;
        ReadOnlyMemory<byte> payload = record.Payload;
        if (payload.Length <= EnvelopePrefixBytes)
        {
            return false;
        }

        ReadOnlySpan<byte> span = payload.Span;
        envelope = new StoredEnvelope(
            new StoreRef(record.Position.ToUInt64()),
            new StoreRef(record.End.ToUInt64()),
            BinaryPrimitives.ReadInt64LittleEndian(span),
            BinaryPrimitives.ReadInt64LittleEndian(span[8..]),
            new ReadOnlySequence<byte>(payload[EnvelopePrefixBytes..]));
        return true;
    }
}
