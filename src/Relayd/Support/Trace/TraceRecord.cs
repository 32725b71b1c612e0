using Relayd.Protocol.V1;

namespace Relayd.Support.Trace;

/// <summary>One event read back from the trace's segments (queries only: this allocates, the data path never does).</summary>
internal sealed record TraceRecord
{
    public TraceEventKind Kind { get; init; }

    public TraceFlags Flags { get; init; }

    public long AtMs { get; init; }

    /// <summary>Message id or transfer id; 0 for key-bundle events (see <see cref="Number"/>).</summary>
    public UInt128 Id { get; init; }

    public string? Sender { get; init; }

    public string? Recipient { get; init; }

    public long Session { get; init; }

    /// <summary>Delivery id (delivered, acknowledged), request id (key bundles), the store's durable mark (accepted; a group DURABLE's last).</summary>
    public ulong Number { get; init; }

    /// <summary>A group DURABLE's first mark (<see cref="TraceFlags.Group"/>); 0 otherwise.</summary>
    public ulong From { get; init; }

    public long Bytes { get; init; }

    public long TotalBytes { get; init; }

    public ErrorCode Code { get; init; }

    public ReceiptStatus Status { get; init; }

    public int Shard { get; init; }

    public ulong SenderUserHash { get; init; }

    public ulong RecipientUserHash { get; init; }

    public string? Detail { get; init; }

    /// <summary>An abuse report's report_id (<see cref="TraceEntry.SenderUserHash"/> says where it is kept); 0 for other kinds.</summary>
    public UInt128 ReportId => Kind == TraceEventKind.TraceAbuseReported ? (((UInt128)SenderUserHash) << 64) | RecipientUserHash : 0;

    public bool FromLog => (Flags & TraceFlags.FromLog) != 0;

    public bool LogOnly => (Flags & TraceFlags.LogOnly) != 0;

    public bool IsGroup => (Flags & TraceFlags.Group) != 0;
}
