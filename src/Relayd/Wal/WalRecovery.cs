using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;

namespace Relayd.Wal;

/// <summary>
/// Brings the directory to a state the log can append to, checking every record on the way (see
/// <see cref="WalScanner"/> for the torn-tail-versus-corruption rule). Never skips damage silently: corruption throws,
/// and a torn tail is zeroed and reported.
/// </summary>
internal static class WalRecovery
{
    /// <summary>The open segments (the last is appended to), the spare prepared ahead if one was found, and the report.</summary>
    internal sealed record Result(List<WalSegment> Segments, WalSegment? Spare, WalRecoveryReport Report);

    public static Result Run(WalOptions options, ILogger logger, IWalRecordObserver? observer = null)
    {
        string directory = options.Directory;
        DeleteStaleTemporaries(directory, logger);
        List<ulong> numbers = WalSegment.List(directory);
        for (int i = 1; i < numbers.Count; i++)
        {
            if (numbers[i] != numbers[i - 1] + 1)
            {
                throw new WalCorruptionException(
                    Path.Combine(directory, WalSegment.FileNameOf(numbers[i - 1] + 1)), 0,
                    $"the segment file is missing (segments {numbers[i - 1]} and {numbers[i]} exist)");
            }
        }

        var segments = new List<WalSegment>(numbers.Count);
        try
        {
            foreach (ulong number in numbers)
            {
                segments.Add(WalSegment.Open(directory, number, writable: true));
            }

            if (segments.Count == 0)
            {
                segments.Add(WalSegment.Create(directory, 1, options.SegmentBytes, options.FileSync, logger));
            }

            return Recover(segments, options, logger, observer);
        }
        catch
        {
            foreach (WalSegment segment in segments)
            {
                segment.Dispose();
            }

            throw;
        }
    }

    private static Result Recover(List<WalSegment> segments, WalOptions options, ILogger logger, IWalRecordObserver? observer)
    {
        // The last segment holding data is the only place a torn write can be; segments after it are spares.
        int last = WalScanner.LastHoldingData(segments);

        long records = 0;
        for (int i = 0; i < last; i++)
        {
            WalScanner.SegmentScan sealedScan = WalScanner.Scan(segments[i], isLast: false, stopAtFirstProblem: true, observer);
            ThrowIfCorrupt(sealedScan);
            records += sealedScan.Records;
        }

        WalSegment tail = segments[last];
        WalScanner.SegmentScan scan = WalScanner.Scan(tail, isLast: true, stopAtFirstProblem: true, observer);
        ThrowIfCorrupt(scan);
        records += scan.Records;
        var report = new WalRecoveryReport { Segments = last + 1, Records = records, End = new WalPosition(tail.Number, (uint)scan.End) };
        if (scan.Problems.Count == 1)
        {
            WalProblem torn = scan.Problems[0];
            long lastNonZero = new WalSegmentReader(tail).FindLastNonZero(torn.Offset);
            long bytes = Math.Max(0, Math.Min(WalRecordHeader.Align(lastNonZero + 1), tail.Length) - torn.Offset);
            tail.Zero(torn.Offset, bytes, options.FileSync);
            WalLog.TornTailTruncated(logger, tail.Path, torn.Offset, torn.Description, bytes);
            report = report with { TornTailTruncated = true, TornTailPosition = report.End, TornTailBytes = bytes, TornTailReason = torn.Description };
        }

        // What was read may so far live only in the page cache of a process that crashed: make it durable before
        // reporting it as such.
        int errno = options.FileSync.FDataSync(tail.Handle);
        if (errno != 0)
        {
            throw WalDirectorySync.Error("fdatasync", tail.Path, errno);
        }

        WalSegment? spare = null;
        foreach (WalSegment extra in segments.Skip(last + 1))
        {
            if (spare is null && extra.Number == tail.Number + 1 && extra.Length == options.SegmentBytes)
            {
                spare = extra;
                continue;
            }

            extra.Dispose();
            File.Delete(extra.Path);
            WalLog.SpareSegmentDeleted(logger, extra.FileName);
        }

        return new Result(segments.GetRange(0, last + 1), spare, report);
    }

    private static void ThrowIfCorrupt(WalScanner.SegmentScan scan)
    {
        if (scan.Problems is [{ Kind: not WalProblemKind.TornTail } problem, ..])
        {
            throw new WalCorruptionException(problem.SegmentFile, problem.Offset, problem.Description);
        }
    }

    private static void DeleteStaleTemporaries(string directory, ILogger logger)
    {
        foreach (string path in System.IO.Directory.EnumerateFiles(directory, "wal-*.log" + WalSegment.TemporarySuffix))
        {
            File.Delete(path);
            WalLog.StaleTemporaryDeleted(logger, Path.GetFileName(path));
        }
    }
}
