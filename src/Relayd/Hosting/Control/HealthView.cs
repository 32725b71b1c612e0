namespace Relayd.Hosting.Control;

/// <summary>
/// <c>health</c>: one partner's health as the relay sees it ("is it us or them?"); the same counters a partner reads
/// about itself with HealthRequest (docs/protocol.md, "Health"). Windows end at <see cref="At"/>.
/// </summary>
internal sealed class HealthView
{
    public string Partner { get; set; } = "";

    public DateTimeOffset At { get; set; }

    public int SessionsNow { get; set; }

    public bool Suspended { get; set; }

    public long ConnectsLastHour { get; set; }

    /// <summary>Sessions that ended in the last hour, by reason (eof, idle, goaway, lost, stalled, stopping, closed, error).</summary>
    public List<CountView> DisconnectsLastHour { get; set; } = [];

    /// <summary>Envelopes accepted from the partner.</summary>
    public long AcceptedLastMinute { get; set; }

    public long AcceptedLastHour { get; set; }

    /// <summary>Envelopes from the partner refused, by error code (the wire name, e.g. RATE_LIMITED).</summary>
    public List<CountView> RefusedLastMinute { get; set; } = [];

    public List<CountView> RefusedLastHour { get; set; } = [];

    /// <summary>Envelopes queued toward the partner (memory and log only), not yet acknowledged by it.</summary>
    public long BacklogEnvelopes { get; set; }

    public long BacklogOldestAgeMs { get; set; }

    /// <summary>Accepted → the partner's delivery ack, deliveries to it in the last 5 minutes.</summary>
    public long DeliveriesLast5Minutes { get; set; }

    public long DeliveryLatencyP50Us { get; set; }

    public long DeliveryLatencyP90Us { get; set; }

    public long DeliveryLatencyP99Us { get; set; }

    public long DeliveryLatencyMaxUs { get; set; }

    /// <summary>Media transfers from or to the partner that failed in the last hour, by error code.</summary>
    public List<CountView> MediaFailuresLastHour { get; set; } = [];

    /// <summary>Key-bundle requests to the partner that timed out (it had no session or did not answer in time).</summary>
    public long KeyBundleTimeoutsLastHour { get; set; }

    /// <summary>The partner's own key-bundle requests that timed out at the other partner.</summary>
    public long KeyBundleRequestsTimedOutLastHour { get; set; }

    /// <summary>Envelopes to the partner that expired undelivered in the last hour.</summary>
    public long ExpiredLastHour { get; set; }

    /// <summary>
    /// One sentence of what the counters point at: whose side a problem is on, or "no problem seen". A reading aid,
    /// not a diagnosis; the counters are the facts.
    /// </summary>
    public string Assessment { get; set; } = "";
}

/// <summary>One count by name: an error code's wire name or a disconnect reason.</summary>
internal sealed class CountView
{
    public string Name { get; set; } = "";

    public long Count { get; set; }
}
