using System.Globalization;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Relayd.Wal;

/// <summary>
/// The operator's tools: a read-only verify that lists every problem, and an explicit repair that truncates the log
/// at its first corrupt record, moving (never deleting) everything cut off into <c>quarantine/</c>.
/// </summary>
internal static class WalRepair
{
    private const string QuarantineDirectoryName = "quarantine";

    public static WalVerifyReport Verify(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"WAL directory {directory} does not exist");
        }

        List<WalSegment> segments = OpenAll(directory, writable: false);
        try
        {
            var problems = new List<WalProblem>();
            long records = 0;
            int last = WalScanner.LastHoldingData(segments);
            for (int i = 0; i < segments.Count; i++)
            {
                if (MissingBefore(directory, segments, i) is { } missing)
                {
                    problems.Add(missing);
                }

                WalScanner.SegmentScan scan = WalScanner.Scan(segments[i], isLast: i == last, stopAtFirstProblem: false);
                records += scan.Records;
                problems.AddRange(scan.Problems);
            }

            return new WalVerifyReport(directory, segments.Count, records, problems);
        }
        finally
        {
            segments.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Truncates at the first corruption or missing segment. The caller holds the directory lock.</summary>
    public static WalRepairResult Repair(string directory, ILogger logger)
    {
        List<WalSegment> segments = OpenAll(directory, writable: true);
        try
        {
            (WalProblem? cut, int index) = FindCut(directory, segments);
            if (cut is null)
            {
                WalLog.RepairNothingToDo(logger, directory);
                return new WalRepairResult { Repaired = false };
            }

            WalLog.RepairTruncating(logger, cut.SegmentFile, cut.Offset, cut.Description);
            string quarantine = CreateQuarantineDirectory(directory);
            var moved = new List<WalQuarantinedFile>();
            int firstMoved = index;
            if (cut.Kind == WalProblemKind.Corruption)
            {
                moved.Add(QuarantineTail(segments[index], cut.Offset, quarantine, logger));
                firstMoved = index + 1;
            }

            foreach (WalSegment segment in segments.Skip(firstMoved))
            {
                segment.Dispose();
                string destination = Path.Combine(quarantine, segment.FileName);
                File.Move(segment.Path, destination);
                moved.Add(new WalQuarantinedFile(segment.Path, 0, segment.Length, destination));
                WalLog.RepairQuarantinedSegment(logger, segment.Path, destination);
            }

            WalDirectorySync.Sync(quarantine);
            WalDirectorySync.Sync(directory);
            var result = new WalRepairResult { Repaired = true, TruncatedAt = cut, QuarantineDirectory = quarantine, Quarantined = moved };
            WalLog.RepairDone(logger, moved.Count, quarantine, result.BytesQuarantined);
            return result;
        }
        finally
        {
            segments.ForEach(s => s.Dispose());
        }
    }

    private static (WalProblem? Cut, int Index) FindCut(string directory, List<WalSegment> segments)
    {
        int last = WalScanner.LastHoldingData(segments);
        for (int i = 0; i < segments.Count; i++)
        {
            if (MissingBefore(directory, segments, i) is { } missing)
            {
                return (missing, i);
            }

            WalScanner.SegmentScan scan = WalScanner.Scan(segments[i], isLast: i == last, stopAtFirstProblem: true);
            if (scan.Problems is [{ Kind: WalProblemKind.Corruption } corruption])
            {
                return (corruption, i);
            }
        }

        return (null, -1);
    }

    /// <summary>Copies [offset, last non-zero byte] of the segment to quarantine, syncs the copy, then zeroes the range.</summary>
    private static WalQuarantinedFile QuarantineTail(WalSegment segment, long offset, string quarantine, ILogger logger)
    {
        var reader = new WalSegmentReader(segment);
        long end = Math.Min(WalRecordHeader.Align(reader.FindLastNonZero(offset) + 1), segment.Length);
        long bytes = Math.Max(0, end - offset);
        string destination = Path.Combine(quarantine, $"{segment.FileName}.from-{offset}");
        using (SafeFileHandle copy = File.OpenHandle(destination, FileMode.CreateNew, FileAccess.Write))
        {
            for (long done = 0; done < bytes;)
            {
                int chunk = (int)Math.Min(1 << 20, bytes - done);
                RandomAccess.Write(copy, reader.Read(offset + done, chunk), done);
                done += chunk;
            }

            int errno = LibcFileSync.Instance.FDataSync(copy);
            if (errno != 0)
            {
                throw WalDirectorySync.Error("fdatasync", destination, errno);
            }
        }

        WalDirectorySync.Sync(quarantine);
        segment.Zero(offset, bytes, LibcFileSync.Instance);
        WalLog.RepairQuarantinedTail(logger, offset, offset + bytes, segment.Path, destination);
        return new WalQuarantinedFile(segment.Path, offset, bytes, destination);
    }

    private static string CreateQuarantineDirectory(string directory)
    {
        string stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        string path = Path.Combine(directory, QuarantineDirectoryName, stamp);
        for (int n = 2; System.IO.Directory.Exists(path); n++)
        {
            path = Path.Combine(directory, QuarantineDirectoryName, $"{stamp}-{n}");
        }

        System.IO.Directory.CreateDirectory(path);
        return path;
    }

    private static WalProblem? MissingBefore(string directory, List<WalSegment> segments, int i)
    {
        if (i == 0 || segments[i].Number == segments[i - 1].Number + 1)
        {
            return null;
        }

        ulong missing = segments[i - 1].Number + 1;
        return new WalProblem(
            Path.Combine(directory, WalSegment.FileNameOf(missing)), missing, 0, WalProblemKind.MissingSegment,
            $"segments {missing}..{segments[i].Number - 1} are missing; segment {segments[i].Number} and later cannot follow on");
    }

    private static List<WalSegment> OpenAll(string directory, bool writable)
    {
        var segments = new List<WalSegment>();
        try
        {
            foreach (ulong number in WalSegment.List(directory))
            {
                segments.Add(WalSegment.Open(directory, number, writable));
            }

            return segments;
        }
        catch
        {
            segments.ForEach(s => s.Dispose());
            throw;
        }
    }
}
