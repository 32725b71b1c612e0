namespace Relayd.Wal;

/// <summary>
/// Walks the records of one segment and classifies damage, for recovery, verify and repair alike. The rule: at the
/// first record that is not valid, if a valid record can be found at any later 8-byte aligned offset of the segment,
/// the damage is corruption (something durable was lost); otherwise, in the last segment of the log, it is a torn
/// tail (a write that never finished, so never acknowledged), and in any earlier segment it is corruption, because
/// the log writer syncs a segment before it writes anything to the next one.
/// </summary>
internal static class WalScanner
{
    /// <summary>The result of examining one offset.</summary>
    internal enum Status
    {
        Valid,
        End,
        Damaged,
    }

    /// <summary>What the record at an offset is; damage details are formatted only when asked for.</summary>
    internal readonly record struct Check(Status Status, WalHeaderStatus Header, int PayloadLength, byte Type, uint StoredCrc, uint ComputedCrc)
    {
        public int RecordSize => WalRecordHeader.RecordSize(PayloadLength);

        public string Describe() => Header switch
        {
            WalHeaderStatus.BadCheck => "record header check mismatch (torn or damaged header)",
            WalHeaderStatus.BadFields => $"record header fields invalid (type {Type}, flags and reserved must be 0)",
            WalHeaderStatus.BadLength => $"record payload length {PayloadLength} runs past the end of the segment",
            _ => $"payload CRC-32C mismatch (stored 0x{StoredCrc:x8}, computed 0x{ComputedCrc:x8}) for a {PayloadLength}-byte record of type {Type}",
        };
    }

    /// <summary>The outcome of scanning a segment.</summary>
    internal sealed class SegmentScan
    {
        /// <summary>Where valid records end (where appending would continue).</summary>
        public long End { get; set; }

        public long Records { get; set; }

        public List<WalProblem> Problems { get; } = [];
    }

    public static Check Examine(WalSegmentReader reader, long offset)
    {
        if (offset + WalRecordHeader.Size > reader.Length)
        {
            return new Check(Status.End, WalHeaderStatus.Empty, 0, 0, 0, 0);
        }

        WalHeaderStatus header = WalRecordHeader.TryRead(
            reader.Read(offset, WalRecordHeader.Size), reader.Length - offset - WalRecordHeader.Size, out int length, out byte type, out uint stored);
        switch (header)
        {
            case WalHeaderStatus.Empty:
                return new Check(Status.End, header, 0, 0, 0, 0);
            case WalHeaderStatus.Valid:
                uint computed = WalRecordHeader.PayloadCrc(type, reader.Read(offset + WalRecordHeader.Size, length));
                return new Check(computed == stored ? Status.Valid : Status.Damaged, header, length, type, stored, computed);
            default:
                return new Check(Status.Damaged, header, length, type, stored, 0);
        }
    }

    /// <summary>The first aligned offset at or after <paramref name="from"/> holding a valid record, or -1.</summary>
    public static long FindNextValid(WalSegmentReader reader, long from)
    {
        for (long offset = WalRecordHeader.Align(from); offset + WalRecordHeader.Size <= reader.Length;)
        {
            if (!reader.Read(offset, WalRecordHeader.Size).ContainsAnyExcept((byte)0))
            {
                // Skip a zero run in one go: the next candidate header is the first one that can hold a non-zero byte.
                long nonZero = reader.FindFirstNonZero(offset + WalRecordHeader.Size);
                if (nonZero < 0)
                {
                    return -1;
                }

                offset = Math.Max(offset + WalRecordHeader.Alignment, (nonZero & ~7L) - WalRecordHeader.Size + WalRecordHeader.Alignment);
                continue;
            }

            if (Examine(reader, offset).Status == Status.Valid)
            {
                return offset;
            }

            offset += WalRecordHeader.Alignment;
        }

        return -1;
    }

    /// <summary>
    /// Scans <paramref name="segment"/> from its start. With <paramref name="stopAtFirstProblem"/> the scan ends at
    /// the first problem (recovery, repair); otherwise it resynchronises at the next valid record and lists every
    /// problem (verify). <paramref name="isLast"/>: whether this is the last segment holding any data.
    /// <paramref name="observer"/> is told of each valid record as it is checked.
    /// </summary>
    public static SegmentScan Scan(WalSegment segment, bool isLast, bool stopAtFirstProblem, IWalRecordObserver? observer = null)
    {
        var reader = new WalSegmentReader(segment);
        var scan = new SegmentScan();
        long offset = 0;
        while (true)
        {
            Check check = Examine(reader, offset);
            if (check.Status == Status.Valid)
            {
                observer?.OnRecord(new WalRecord(new WalPosition(segment.Number, (uint)offset), check.Type, reader.ReadMemory(offset + WalRecordHeader.Size, check.PayloadLength)));
                scan.Records++;
                offset += check.RecordSize;
                scan.End = offset;
                continue;
            }

            string problem;
            if (check.Status == Status.End)
            {
                long nonZero = reader.FindFirstNonZero(offset);
                if (nonZero < 0)
                {
                    return scan;
                }

                problem = $"an all-zero record header, but non-zero bytes follow at offset {nonZero}";
            }
            else
            {
                problem = check.Describe();
            }

            long next = FindNextValid(reader, offset + WalRecordHeader.Alignment);
            WalProblemKind kind = next < 0 && isLast ? WalProblemKind.TornTail : WalProblemKind.Corruption;
            string description = next >= 0
                ? $"{problem}; a valid record follows at offset {next}"
                : isLast ? $"{problem}; no valid record follows" : $"{problem}; in a sealed segment (later segments hold data)";
            scan.Problems.Add(new WalProblem(segment.Path, segment.Number, offset, kind, description));
            if (next < 0 || stopAtFirstProblem)
            {
                return scan;
            }

            offset = next;
        }
    }

    /// <summary>
    /// The index of the last segment holding any non-zero byte (0 if none does): the only one where a torn write can
    /// be. Segments after it are spares, pre-written with zeros.
    /// </summary>
    public static int LastHoldingData(IReadOnlyList<WalSegment> segments)
    {
        int last = segments.Count - 1;
        while (last > 0 && new WalSegmentReader(segments[last]).FindFirstNonZero(0) < 0)
        {
            last--;
        }

        return last;
    }
}
