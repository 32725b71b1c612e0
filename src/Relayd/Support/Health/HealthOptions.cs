namespace Relayd;

/// <summary>Partner health (docs/operations.md, "Partner health"): per-partner counters the admin and each partner read.</summary>
public sealed class HealthOptions
{
    /// <summary>
    /// Whether the relay records partner health. Off, HealthRequest is refused with UNEXPECTED_FRAME and
    /// <c>relayd ctl health</c> answers not_available; what it costs is then measurable (<c>relayd dev --health off</c>).
    /// Defaults to true.
    /// </summary>
    public bool Enabled { get; set; } = true;
}
