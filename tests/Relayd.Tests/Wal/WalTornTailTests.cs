using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>
/// A crash in the middle of writing the last record leaves a torn tail: reopening keeps every earlier record, zeroes
/// the unfinished one, reports it, and appending continues there.
/// </summary>
public sealed class WalTornTailTests : IDisposable
{
    private const int LastPayloadLength = 203; // 16 + 203 + 5 bytes of padding

    private readonly TempWalDirectory _template = new();
    private readonly List<(byte Type, byte[] Payload)> _records = WalTestKit.Records(20, maxLength: 1000, seed: 9);
    private WalPosition _last;

    public WalTornTailTests() => _records.Add((77, WalTestKit.Payload(4242, LastPayloadLength)));

    public void Dispose() => _template.Dispose();

    [Fact]
    public async Task Zeroing_the_last_record_from_any_byte_on_keeps_every_earlier_record_and_appending_continues()
    {
        await CreateTemplate();
        int size = WalRecordHeader.RecordSize(LastPayloadLength);
        for (int at = 0; at < size; at++)
        {
            using var copy = CopyOfTemplate();
            await using (FileStream file = File.OpenWrite(copy.Segment(1)))
            {
                file.Position = _last.Offset + at;
                await file.WriteAsync(new byte[WalTestKit.SmallSegment - file.Position], TestContext.Current.CancellationToken);
            }

            bool lastSurvives = at >= WalRecordHeader.Size + LastPayloadLength; // only padding was zeroed
            bool torn = at > 0 && !lastSurvives; // at 0 the log simply ends before the last record
            await AssertRecoversAndAppends(copy, lastSurvives, torn, $"zeroed from byte {at} of the last record");
        }
    }

    [Fact]
    public async Task Changing_any_header_byte_or_any_sampled_payload_byte_of_the_last_record_is_a_torn_tail()
    {
        await CreateTemplate();
        IEnumerable<int> offsets = Enumerable.Range(0, WalRecordHeader.Size)
            .Concat(Enumerable.Range(0, LastPayloadLength).Where(i => i % 13 == 0 || i == LastPayloadLength - 1).Select(i => WalRecordHeader.Size + i));
        foreach (int at in offsets)
        {
            using var copy = CopyOfTemplate();
            await FlipByte(copy.Segment(1), _last.Offset + at);
            await AssertRecoversAndAppends(copy, lastSurvives: false, torn: true, $"byte {at} of the last record flipped");
        }
    }

    [Fact]
    public async Task Garbage_after_the_last_record_that_is_no_valid_record_is_zeroed_as_a_torn_tail()
    {
        await CreateTemplate();
        using var copy = CopyOfTemplate();
        long end = WriteAheadLog.EndOf(_last, LastPayloadLength).Offset;
        await WriteAt(copy.Segment(1), end + 40, WalTestKit.Payload(1, 300));

        using (WriteAheadLog log = WalTestKit.Open(copy.Path))
        {
            Assert.True(log.Recovery.TornTailTruncated);
            Assert.Equal(new WalPosition(1, (uint)end), log.Recovery.TornTailPosition);
            Assert.Equal(WalRecordHeader.Align(40 + 300), log.Recovery.TornTailBytes);
            Assert.Contains("all-zero record header", log.Recovery.TornTailReason, StringComparison.Ordinal);
            WalTestKit.AssertSameRecords(_records, [.. log.ReadAll()]);
        }

        byte[] segment = await File.ReadAllBytesAsync(copy.Segment(1), TestContext.Current.CancellationToken);
        Assert.DoesNotContain(segment[(int)end..], b => b != 0);
    }

    [Fact]
    public async Task A_torn_first_write_into_the_segment_prepared_ahead_is_a_torn_tail_of_that_segment()
    {
        await CreateTemplate();
        using var copy = CopyOfTemplate();
        await WriteAt(copy.Segment(2), 4096, WalTestKit.Payload(2, 100)); // the page holding the header never made it

        using WriteAheadLog log = WalTestKit.Open(copy.Path);
        Assert.True(log.Recovery.TornTailTruncated);
        Assert.Equal(new WalPosition(2, 0), log.Recovery.TornTailPosition);
        WalTestKit.AssertSameRecords(_records, [.. log.ReadAll()]);
        await WalTestKit.AppendAndCommitAsync(log, [(1, [1, 2, 3])]);
    }

    private async Task AssertRecoversAndAppends(TempWalDirectory copy, bool lastSurvives, bool torn, string what)
    {
        List<(byte Type, byte[] Payload)> expected = lastSurvives ? [.. _records] : [.. _records.SkipLast(1)];
        using (WriteAheadLog log = WalTestKit.OpenObserved(copy.Path, out List<WalRecord> seen))
        {
            // The open scan's observer (the envelope store learns what was settled from it) sees exactly what the log keeps.
            WalTestKit.AssertSameRecords(expected, seen);
            Assert.Equal([.. log.ReadAll().Select(r => r.Position)], seen.Select(r => r.Position));
            Assert.True(torn == log.Recovery.TornTailTruncated, $"{what}: torn tail reported = {log.Recovery.TornTailTruncated}");
            if (torn)
            {
                Assert.Equal(_last, log.Recovery.TornTailPosition);
                Assert.InRange(log.Recovery.TornTailBytes, 1, WalRecordHeader.RecordSize(LastPayloadLength));
            }

            WalTestKit.AssertSameRecords(expected, [.. log.ReadAll()]);
            (byte, byte[]) added = (5, WalTestKit.Payload(99, 50));
            await WalTestKit.AppendAndCommitAsync(log, [added]);
            expected.Add(added);
        }

        using WriteAheadLog reopened = WalTestKit.Open(copy.Path);
        Assert.False(reopened.Recovery.TornTailTruncated, what);
        WalTestKit.AssertSameRecords(expected, [.. reopened.ReadAll()]);
    }

    private async Task CreateTemplate()
    {
        using WriteAheadLog log = WalTestKit.Open(_template.Path);
        _last = (await WalTestKit.AppendAndCommitAsync(log, _records))[^1];
        Assert.Equal(1UL, _last.Segment);
        for (int i = 0; i < 500 && !File.Exists(_template.Segment(2)); i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken); // the spare segment, so copies need not create one
        }
    }

    private TempWalDirectory CopyOfTemplate()
    {
        var copy = new TempWalDirectory();
        foreach (string file in Directory.GetFiles(_template.Path, "wal-*.log"))
        {
            File.Copy(file, Path.Combine(copy.Path, Path.GetFileName(file)));
        }

        return copy;
    }

    internal static async Task FlipByte(string path, long offset)
    {
        await using FileStream file = File.Open(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        int value = file.ReadByte();
        file.Position = offset;
        file.WriteByte((byte)(value ^ 0xFF));
    }

    internal static async Task WriteAt(string path, long offset, byte[] bytes)
    {
        await using FileStream file = File.Open(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = offset;
        await file.WriteAsync(bytes, TestContext.Current.CancellationToken);
    }
}
