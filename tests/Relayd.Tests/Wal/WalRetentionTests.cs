using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>Retention: whole segments the caller has consumed are deleted; the current one never is.</summary>
public sealed class WalRetentionTests : IDisposable
{
    private readonly TempWalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Consumed_segments_are_deleted_but_never_the_one_being_appended_to()
    {
        List<(byte Type, byte[] Payload)> records = WalTestKit.Records(100, maxLength: 6000, seed: 21);
        List<WalPosition> positions;
        ulong current;
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path))
        {
            positions = await WalTestKit.AppendAndCommitAsync(log, records);
            current = positions[^1].Segment;
            Assert.True(current >= 4);
            await SizeCountsSegmentsAndSpare(log);

            log.DeleteSegmentsBefore(3);

            Assert.Equal(Enumerable.Range(3, (int)current - 2).Select(n => (ulong)n), log.Segments);
            Assert.False(File.Exists(_dir.Segment(1)) || File.Exists(_dir.Segment(2)));
            await SizeCountsSegmentsAndSpare(log);
            int firstKept = positions.FindIndex(p => p.Segment == 3);
            WalTestKit.AssertSameRecords(records[firstKept..], [.. log.ReadAll()]);
            Assert.Throws<ArgumentOutOfRangeException>(() => log.ReadPayload(positions[0]));

            log.DeleteSegmentsBefore(ulong.MaxValue);

            Assert.Equal([current], log.Segments);
            Assert.True(File.Exists(_dir.Segment(current)));
        }

        using WriteAheadLog reopened = WalTestKit.Open(_dir.Path);
        Assert.Equal([current], reopened.Segments);
        WalTestKit.AssertSameRecords(records[positions.FindIndex(p => p.Segment == current)..], [.. reopened.ReadAll()]);
        (byte, byte[]) added = (3, [1, 2, 3]);
        await WalTestKit.AppendAndCommitAsync(reopened, [added]);
        Assert.Equal(added.Item2, reopened.ReadAll().Last().Payload.ToArray());
    }

    /// <summary>SizeBytes covers the segments in use plus the spare being prepared ahead (once it is ready).</summary>
    private static async Task SizeCountsSegmentsAndSpare(WriteAheadLog log)
    {
        long expected = (log.Segments.Count + 1L) * WalTestKit.SmallSegment;
        for (int i = 0; i < 500 && log.SizeBytes != expected; i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.Equal(expected, log.SizeBytes);
    }
}
