using Microsoft.Extensions.Logging;
using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>
/// Damage to a record that was durable (valid records follow it, or it sits in an earlier segment) is corruption:
/// the log refuses to open and names the file and offset; verify lists it; repair moves the damaged part to quarantine.
/// </summary>
public sealed class WalCorruptionTests : IDisposable
{
    private readonly TempWalDirectory _dir = new();
    private readonly List<(byte Type, byte[] Payload)> _records = WalTestKit.Records(30, maxLength: 1500, seed: 11);

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_damaged_record_followed_by_valid_records_refuses_to_open_naming_the_file_and_offset()
    {
        List<WalPosition> positions = await Write(_records);
        WalPosition damaged = positions[10];
        await WalTornTailTests.FlipByte(_dir.Segment(1), damaged.Offset + WalRecordHeader.Size + 3);

        WalCorruptionException error = Assert.Throws<WalCorruptionException>(() => WalTestKit.Open(_dir.Path));

        Assert.Equal(_dir.Segment(1), error.SegmentPath);
        Assert.Equal(damaged.Offset, error.Offset);
        Assert.Contains(_dir.Segment(1), error.Message, StringComparison.Ordinal);
        Assert.Contains($"byte offset {damaged.Offset}", error.Message, StringComparison.Ordinal);
        Assert.Contains("CRC-32C mismatch", error.Message, StringComparison.Ordinal);
        Assert.Contains($"a valid record follows at offset {positions[11].Offset}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_damaged_header_in_an_earlier_segment_is_corruption_even_when_nothing_valid_follows_it_there()
    {
        List<(byte Type, byte[] Payload)> records = WalTestKit.Records(40, maxLength: 6000, seed: 12);
        List<WalPosition> positions = await Write(records);
        int lastOfFirst = positions.FindLastIndex(p => p.Segment == 1);
        Assert.True(positions[^1].Segment > 1);
        await WalTornTailTests.FlipByte(_dir.Segment(1), positions[lastOfFirst].Offset + 1);

        WalCorruptionException error = Assert.Throws<WalCorruptionException>(() => WalTestKit.Open(_dir.Path));

        Assert.Equal((_dir.Segment(1), (long)positions[lastOfFirst].Offset), (error.SegmentPath, error.Offset));
        Assert.Contains("header check mismatch", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_segment_between_others_refuses_to_open()
    {
        await Write(WalTestKit.Records(40, maxLength: 6000, seed: 13));
        File.Delete(_dir.Segment(2));

        WalCorruptionException error = Assert.Throws<WalCorruptionException>(() => WalTestKit.Open(_dir.Path));

        Assert.Equal(_dir.Segment(2), error.SegmentPath);
        Assert.Contains("missing", error.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_lists_every_problem_with_its_segment_and_offset_and_counts_the_records_without_changing_anything()
    {
        List<WalPosition> positions = await Write(_records);
        await WalTornTailTests.FlipByte(_dir.Segment(1), positions[5].Offset + 2);
        await WalTornTailTests.FlipByte(_dir.Segment(1), positions[20].Offset + WalRecordHeader.Size);
        byte[] before = await File.ReadAllBytesAsync(_dir.Segment(1), TestContext.Current.CancellationToken);

        WalVerifyReport report = WriteAheadLog.Verify(_dir.Path);

        Assert.False(report.CanOpen);
        Assert.Equal(_records.Count - 2, report.Records);
        Assert.Equal(2, report.Segments); // the log's segment and the spare prepared ahead
        Assert.Collection(
            report.Problems,
            p => Assert.Equal((_dir.Segment(1), 1UL, (long)positions[5].Offset, WalProblemKind.Corruption), (p.SegmentFile, p.Segment, p.Offset, p.Kind)),
            p => Assert.Equal((_dir.Segment(1), (long)positions[20].Offset, WalProblemKind.Corruption), (p.SegmentFile, p.Offset, p.Kind)));
        Assert.Equal(before, await File.ReadAllBytesAsync(_dir.Segment(1), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task Repair_moves_the_damaged_tail_and_later_segments_to_quarantine_and_logs_it_and_the_log_opens_again()
    {
        List<(byte Type, byte[] Payload)> records = WalTestKit.Records(40, maxLength: 6000, seed: 14);
        List<WalPosition> positions = await Write(records);
        int damaged = positions.FindIndex(p => p.Segment == 2) + 2;
        await WalTornTailTests.FlipByte(_dir.Segment(2), positions[damaged].Offset + WalRecordHeader.Size + 1);
        byte[] segment2 = await File.ReadAllBytesAsync(_dir.Segment(2), TestContext.Current.CancellationToken);
        ulong lastSegment = positions[^1].Segment;
        Assert.True(lastSegment > 2);
        var logger = new ListLogger();

        WalRepairResult result = WriteAheadLog.Repair(_dir.Path, logger);

        Assert.True(result.Repaired);
        Assert.Equal((_dir.Segment(2), (long)positions[damaged].Offset), (result.TruncatedAt!.SegmentFile, result.TruncatedAt.Offset));
        Assert.StartsWith(Path.Combine(_dir.Path, "quarantine"), result.QuarantineDirectory, StringComparison.Ordinal);
        WalQuarantinedFile tail = result.Quarantined[0];
        Assert.Equal((_dir.Segment(2), (long)positions[damaged].Offset), (tail.Source, tail.SourceOffset));
        Assert.Equal(segment2.AsSpan((int)tail.SourceOffset, (int)tail.Bytes).ToArray(), await File.ReadAllBytesAsync(tail.Destination, TestContext.Current.CancellationToken));
        Assert.All(result.Quarantined.Skip(1), q => Assert.True(File.Exists(q.Destination) && !File.Exists(q.Source)));
        Assert.Equal(
            Enumerable.Range(3, (int)lastSegment - 1).Select(n => _dir.Segment((ulong)n)), // later segments and the spare
            result.Quarantined.Skip(1).Select(q => q.Source));
        foreach (WalQuarantinedFile moved in result.Quarantined)
        {
            Assert.Contains(logger.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains(moved.Destination, StringComparison.Ordinal));
        }

        Assert.True(WriteAheadLog.Verify(_dir.Path).CanOpen);
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);
        WalTestKit.AssertSameRecords(records[..damaged], [.. log.ReadAll()]);
        await WalTestKit.AppendAndCommitAsync(log, [(1, [9, 9, 9])]);
    }

    [Fact]
    public async Task Repair_of_a_healthy_log_changes_nothing()
    {
        await Write(_records);

        WalRepairResult result = WriteAheadLog.Repair(_dir.Path, new ListLogger());

        Assert.False(result.Repaired);
        Assert.False(Directory.Exists(Path.Combine(_dir.Path, "quarantine")));
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);
        Assert.Equal(_records.Count, log.Recovery.Records);
    }

    private async Task<List<WalPosition>> Write(List<(byte Type, byte[] Payload)> records)
    {
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);
        return await WalTestKit.AppendAndCommitAsync(log, records);
    }
}
