namespace Relayd.Hosting.Control;

/// <summary>The answer to <c>trace</c>: a message's (or media transfer's) steps at the relay and where it stopped.</summary>
internal sealed class TraceView
{
    /// <summary>message, transfer, key bundle request or abuse report.</summary>
    public string Of { get; set; } = "";

    public string Sender { get; set; } = "";

    /// <summary>Empty for a message refused before it was routed.</summary>
    public string Recipient { get; set; } = "";

    /// <summary>The message id, transfer id or report id (32 hex digits), or the key-bundle request id (decimal).</summary>
    public string Id { get; set; } = "";

    /// <summary>
    /// The sender user: its keyed hash (<c>siphash:</c> 16 hex digits), or with show_users its raw id (<c>hex:</c>) while
    /// the relay holds the envelope in memory; null when the trace has no accepted record.
    /// </summary>
    public string? SenderUser { get; set; }

    public string? RecipientUser { get; set; }

    /// <summary>Why the raw user ids asked for (show_users) are not shown; null when they are, or were not asked for.</summary>
    public string? UsersNote { get; set; }

    public List<TraceStepView> Steps { get; set; } = [];

    /// <summary>Where it stopped and whose side it waits on, e.g. "accepted 12:00:01.123, waiting for beta: beta has no session since 11:58:02".</summary>
    public string Summary { get; set; } = "";

    /// <summary>The partner it waits on; null when it waits on nobody (complete, refused, expired, purged).</summary>
    public string? WaitingOn { get; set; }
}

internal sealed class TraceStepView
{
    /// <summary>received, refused, accepted, durable, delivered, acknowledged, receipt, expired, purged, duplicate, media ..., key bundle ..., abuse reported.</summary>
    public string Step { get; set; } = "";

    public DateTimeOffset At { get; set; }

    /// <summary>Milliseconds since the step before (0 for the first).</summary>
    public long AfterMs { get; set; }

    /// <summary>The relay's connection id of the session involved; 0 = none (a receipt held).</summary>
    public long Session { get; set; }

    public long Bytes { get; set; }

    public long? TotalBytes { get; set; }

    public int? Shard { get; set; }

    public bool? LogOnly { get; set; }

    public ulong? DeliveryId { get; set; }

    /// <summary>The proto name of the error code, e.g. UNKNOWN_RECIPIENT_PARTNER.</summary>
    public string? Code { get; set; }

    public string? Detail { get; set; }

    /// <summary>The receipt's status, e.g. DELIVERED.</summary>
    public string? Status { get; set; }

    /// <summary>abuse reported: the message the report names (32 hex digits); null when it names none.</summary>
    public string? MessageId { get; set; }

    /// <summary>Derived from the write-ahead log at a restart: the event itself was lost with the relay's process.</summary>
    public bool? FromLog { get; set; }
}
