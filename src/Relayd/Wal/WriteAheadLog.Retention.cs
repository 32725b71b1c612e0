using Relayd.Diagnostics;

namespace Relayd.Wal;

public sealed partial class WriteAheadLog
{
    /// <summary>The segment numbers that make up the log, oldest first (not counting the spare prepared ahead).</summary>
    public IReadOnlyList<ulong> Segments => [.. _segments.Select(s => s.Number)];

    /// <summary>Bytes of all segment files on disk, including the spare prepared ahead.</summary>
    /// <summary>Each retained segment's number and length, oldest first (recovery's progress is measured against them).</summary>
    public IReadOnlyList<(ulong Number, long Length)> SegmentLengths => [.. _segments.Select(s => (s.Number, s.Length))];

    public long SizeBytes => _segments.Sum(s => s.Length) + (_preparer.Ready?.Length ?? 0);

    /// <summary>
    /// Deletes the segment files numbered below <paramref name="segment"/>, which the caller has fully consumed. The
    /// segment being appended to, and any segment not yet entirely durable, is never deleted.
    /// </summary>
    public void DeleteSegmentsBefore(ulong segment)
    {
        WalSegment[] removed;
        lock (_appendLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            ulong limit = Math.Min(segment, Math.Min(_tail.Number, DurablePosition.Segment));
            WalSegment[] table = _segments;
            int count = 0;
            while (count < table.Length && table[count].Number < limit)
            {
                count++;
            }

            if (count == 0)
            {
                return;
            }

            removed = table[..count];
            _segments = table[count..];
        }

        foreach (WalSegment old in removed)
        {
            old.Dispose();
            File.Delete(old.Path);
        }

        WalDirectorySync.Sync(Directory);
        WalLog.SegmentsDeleted(_logger, removed.Length, removed[^1].Number + 1, removed.Sum(s => s.Length));
    }

    /// <summary>
    /// Bytes available to relayd on the filesystem holding the log (statvfs f_bavail × f_frsize), so the host can
    /// refuse appends below a reserve before the disk is actually full.
    /// </summary>
    public long AvailableBytes() => new DriveInfo(Directory).AvailableFreeSpace;

    /// <summary>
    /// <see cref="AvailableBytes"/> less the segment being pre-written in the background, if one is: taking a segment
    /// starts preparing the next at once, and a check that ran before that write landed would see a segment's worth of
    /// space that is already spoken for (seen: a 16 MiB disk filled to 0 despite a 2 MiB reserve).
    /// </summary>
    public long AvailableBytesAfterPreparation()
    {
        bool preparing = _preparer.IsPending; // read without the append lock: a stale answer only errs by one check
        return AvailableBytes() - (preparing ? _options.SegmentBytes : 0);
    }
}
