using System.Buffers.Binary;
using Relayd.Protocol.V1;
using Relayd.Wal;

namespace Relayd.Storage.WalStore;

/// <summary>
/// What the Settled and HeldReceipts records say, collected while the log's open scan checks every record: recovery
/// then streams the envelopes in one more read, knowing each one's fate as it meets it, instead of reading the log
/// once more first to learn them.
/// </summary>
internal sealed class SettlementsFound : IWalRecordObserver
{
    /// <summary>Envelope positions a Settled record names.</summary>
    public HashSet<ulong> Settled { get; } = [];

    /// <summary>Envelope positions whose receipts a HeldReceipts record holds, with the receipt.</summary>
    public Dictionary<ulong, (ReceiptStatus Status, ErrorCode Code)> Held { get; } = [];

    public void OnRecord(in WalRecord record)
    {
        ReadOnlySpan<byte> entries = record.Payload.Span;
        if (record.Type == StoredRecords.Settled)
        {
            for (int i = 0; i + sizeof(ulong) <= entries.Length; i += sizeof(ulong))
            {
                Settled.Add(BinaryPrimitives.ReadUInt64LittleEndian(entries[i..]));
            }
        }
        else if (record.Type == StoredRecords.HeldReceipts)
        {
            for (int i = 0; i + StoredRecords.HeldReceiptBytes <= entries.Length; i += StoredRecords.HeldReceiptBytes)
            {
                (ulong position, ReceiptStatus status, ErrorCode code) = StoredRecords.ReadHeldReceipt(entries[i..]);
                Held[position] = (status, code);
            }
        }
    }
}
