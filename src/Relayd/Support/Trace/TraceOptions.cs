namespace Relayd;

/// <summary>
/// Per-message trace (docs/operations.md, "Trace"): each message's steps at the relay, kept in segment files under
/// <c>&lt;wal.dir&gt;/trace</c> for <c>relayd ctl trace</c> and TraceRequest. The <c>[trace]</c> table of the config.
/// </summary>
public sealed class TraceOptions
{
    /// <summary>The default of <see cref="MaxBytes"/>: 1 GiB.</summary>
    public const long DefaultMaxBytes = 1L << 30;

    private TimeSpan _retention = TimeSpan.FromDays(7);
    private long _maxBytes = DefaultMaxBytes;
    private int _segmentBytes = 16 * 1024 * 1024;

    /// <summary>
    /// Whether the relay records the trace. Off, TraceRequest is refused with UNEXPECTED_FRAME and
    /// <c>relayd ctl trace</c> answers not_available; what it costs is then measurable (<c>relayd dev --no-trace</c>).
    /// Defaults to true.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// How long events are kept: a segment whose newest event is older is deleted. 1 minute to 366 days. Defaults to 7 days.
    /// </summary>
    public TimeSpan Retention
    {
        get => _retention;
        set => _retention = value >= TimeSpan.FromMinutes(1) && value <= TimeSpan.FromDays(366)
            ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be between 60 seconds and 366 days");
    }

    /// <summary>
    /// Most bytes the trace's segment files may hold; beyond it the oldest segments are deleted first (counted in
    /// <c>relayd_trace_events_expired_total</c>). 1 MiB to 1 TiB, and at least twice <see cref="SegmentBytes"/>. Defaults to 1 GiB.
    /// </summary>
    public long MaxBytes
    {
        get => _maxBytes;
        set => _maxBytes = value is >= 1L << 20 and <= 1L << 40 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be between 1048576 and 1099511627776");
    }

    /// <summary>Size at which a segment is closed (fdatasync'ed) and a new one begun. 64 KiB to 1 GiB. Defaults to 16 MiB.</summary>
    public int SegmentBytes
    {
        get => _segmentBytes;
        set => _segmentBytes = value is >= 64 * 1024 and <= 1 << 30 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be between 65536 and 1073741824");
    }

    /// <summary>Events the in-memory ring holds before the writer takes them; beyond, new events are dropped and counted. Defaults to 32768 (4 MiB).</summary>
    internal int RingEvents { get; set; } = 1 << 15;
}
