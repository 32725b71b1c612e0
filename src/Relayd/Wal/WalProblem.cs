namespace Relayd.Wal;

/// <summary>What kind of damage a <see cref="WalProblem"/> is.</summary>
public enum WalProblemKind
{
    /// <summary>A record that was once durable is wrong (or a zeroed header hides later records): the log will not open.</summary>
    Corruption,

    /// <summary>An unfinished write at the very end of the log; opening the log zeroes it. Never acknowledged data.</summary>
    TornTail,

    /// <summary>A segment file between the first and the last is missing: the log will not open.</summary>
    MissingSegment,
}

/// <summary>One problem found on disk.</summary>
/// <param name="SegmentFile">The segment file's path (for a missing segment, the path it should have).</param>
/// <param name="Segment">The segment number.</param>
/// <param name="Offset">The byte offset in the segment where the problem starts.</param>
/// <param name="Kind">Corruption, torn tail or missing segment.</param>
/// <param name="Description">What exactly is wrong, for operators.</param>
public sealed record WalProblem(string SegmentFile, ulong Segment, long Offset, WalProblemKind Kind, string Description)
{
    /// <inheritdoc />
    public override string ToString() => $"{Kind} in {SegmentFile} at byte offset {Offset}: {Description}";
}
