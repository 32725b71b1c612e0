namespace Relayd.Interop;

/// <summary>The record types of the interop log (<c>&lt;wal.dir&gt;/interop/</c>, docs/wal.md); never renumbered.</summary>
internal static class InteropRecordTypes
{
    /// <summary>An accepted abuse report: its AbuseNotice (notice id, report, verified and unverified ids, time) as protobuf.</summary>
    public const byte AbuseReport = 1;

    /// <summary>Notices the reported partner acknowledged: u64 notice ids, little-endian.</summary>
    public const byte AbuseNoticesAcked = 2;

    /// <summary>A READ receipt held for an offline sender partner: u64 hold id, u16 partner id length, partner id, Receipt protobuf.</summary>
    public const byte ReadReceiptHeld = 3;

    /// <summary>Held READ receipts handed to a session: u64 hold ids, little-endian.</summary>
    public const byte ReadReceiptsHandedOver = 4;
}
