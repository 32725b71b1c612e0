namespace Relayd.Wal;

/// <summary>The result of <see cref="WriteAheadLog.Verify"/>: a read-only check of every segment.</summary>
/// <param name="Directory">The directory checked.</param>
/// <param name="Segments">Segment files found.</param>
/// <param name="Records">Valid records found (including ones after a damaged record).</param>
/// <param name="Problems">Every problem, in log order, each with its segment file and byte offset.</param>
public sealed record WalVerifyReport(string Directory, int Segments, long Records, IReadOnlyList<WalProblem> Problems)
{
    /// <summary>
    /// Whether <see cref="WriteAheadLog.Open"/> would succeed: there is no problem other than a torn tail (which
    /// opening zeroes).
    /// </summary>
    public bool CanOpen => Problems.All(p => p.Kind == WalProblemKind.TornTail);
}

/// <summary>The result of <see cref="WriteAheadLog.Repair"/>.</summary>
public sealed record WalRepairResult
{
    /// <summary>Whether anything was changed. False when the log had no corruption (a torn tail is left to Open).</summary>
    public required bool Repaired { get; init; }

    /// <summary>The problem at which the log was truncated.</summary>
    public WalProblem? TruncatedAt { get; init; }

    /// <summary>The directory under <c>quarantine/</c> that received everything cut off the log.</summary>
    public string? QuarantineDirectory { get; init; }

    /// <summary>Every file or byte range moved out of the log, in order.</summary>
    public IReadOnlyList<WalQuarantinedFile> Quarantined { get; init; } = [];

    /// <summary>Total bytes moved to quarantine.</summary>
    public long BytesQuarantined => Quarantined.Sum(q => q.Bytes);
}

/// <summary>One piece of the log moved to quarantine by <see cref="WriteAheadLog.Repair"/>.</summary>
/// <param name="Source">The segment file it came from.</param>
/// <param name="SourceOffset">The byte offset in <paramref name="Source"/> where it started (0 for a whole segment).</param>
/// <param name="Bytes">Its length.</param>
/// <param name="Destination">The file in quarantine that now holds it.</param>
public sealed record WalQuarantinedFile(string Source, long SourceOffset, long Bytes, string Destination);
