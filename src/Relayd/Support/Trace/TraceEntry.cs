using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Support.Trace;

/// <summary>What marks a <see cref="TraceEntry"/> beyond its kind.</summary>
[Flags]
internal enum TraceFlags : byte
{
    None = 0,

    /// <summary>Queued in the log only (spilled), not in memory.</summary>
    LogOnly = 1,

    /// <summary>Derived from the write-ahead log at start, because the event itself was lost with the process.</summary>
    FromLog = 2,

    /// <summary><see cref="TraceEntry.Id"/> is not a 16-byte message id (a refused frame's id of another length): not findable by id.</summary>
    NoId = 4,

    /// <summary>
    /// A DURABLE for a batch of one session's Acks, not for one message (no id): it covers the session's envelopes
    /// whose ACCEPTED mark (<see cref="TraceEntry.Number"/>) lies from <see cref="TraceEntry.From"/> to its own <see cref="TraceEntry.Number"/>.
    /// </summary>
    Group = 8,
}

/// <summary>
/// One event as the data path hands it to the trace: a fixed-size value copied into the ring (no allocation). The
/// partners and the detail are references to objects that already exist; user ids are only their keyed hashes.
/// </summary>
internal struct TraceEntry
{
    public TraceEventKind Kind;
    public TraceFlags Flags;
    public ushort Shard;
    public ErrorCode Code;
    public ReceiptStatus Status;
    public long AtMs;

    /// <summary>Message id (envelopes, abuse reports), transfer id (media) or 0 (key bundles: see <see cref="Number"/>).</summary>
    public UInt128 Id;
    public PartnerInfo? Sender;
    public PartnerInfo? Recipient;
    public long Session;

    /// <summary>Delivery id (delivered, acknowledged), request id (key bundles), the store's durable mark (accepted; a group DURABLE's last).</summary>
    public ulong Number;

    /// <summary>A group DURABLE's first mark (<see cref="TraceFlags.Group"/>); 0 otherwise.</summary>
    public ulong From;
    public long Bytes;
    public long TotalBytes;
    /// <summary>Keyed hashes of the users (accepted); for <see cref="TraceEventKind.TraceAbuseReported"/> the report id's high and low 64 bits instead (an abuse record carries no user hash): no wider entry for a rare event.</summary>
    public ulong SenderUserHash;
    public ulong RecipientUserHash;

    /// <summary>A refusal's or failure's detail (an existing string), cut at <see cref="TraceRecordCodec.MaxDetailBytes"/> when written.</summary>
    public string? Detail;
}
