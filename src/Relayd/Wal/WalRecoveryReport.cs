namespace Relayd.Wal;

/// <summary>What <see cref="WriteAheadLog.Open"/> found on disk.</summary>
public sealed record WalRecoveryReport
{
    /// <summary>Segment files that make up the log after opening (not counting the spare one prepared ahead).</summary>
    public required int Segments { get; init; }

    /// <summary>Valid records found.</summary>
    public required long Records { get; init; }

    /// <summary>Where the next record will be appended; everything before it is durable.</summary>
    public required WalPosition End { get; init; }

    /// <summary>Whether an unfinished write at the end of the last segment was zeroed.</summary>
    public bool TornTailTruncated { get; init; }

    /// <summary>Where the torn tail started (the log now ends there), when <see cref="TornTailTruncated"/>.</summary>
    public WalPosition? TornTailPosition { get; init; }

    /// <summary>How many bytes were zeroed, when <see cref="TornTailTruncated"/>.</summary>
    public long TornTailBytes { get; init; }

    /// <summary>What was wrong with the first torn record, when <see cref="TornTailTruncated"/>.</summary>
    public string? TornTailReason { get; init; }
}
