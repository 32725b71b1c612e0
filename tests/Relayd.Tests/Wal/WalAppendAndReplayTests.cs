using System.Buffers;
using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>Appending, committing, reopening and reading back: what goes in comes out, byte for byte, in order.</summary>
public sealed class WalAppendAndReplayTests : IDisposable
{
    private readonly TempWalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Every_committed_record_comes_back_byte_identical_and_in_order_after_reopening()
    {
        List<(byte Type, byte[] Payload)> records = WalTestKit.Records(500, maxLength: 3000);
        List<WalPosition> positions;
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path, segmentBytes: 1024 * 1024))
        {
            positions = await WalTestKit.AppendAndCommitAsync(log, records);
            Assert.Equal(WriteAheadLog.EndOf(positions[^1], records[^1].Payload.Length), log.DurablePosition);
        }

        using WriteAheadLog reopened = WalTestKit.Open(_dir.Path, segmentBytes: 1024 * 1024);
        Assert.Equal(500, reopened.Recovery.Records);
        Assert.False(reopened.Recovery.TornTailTruncated);
        List<WalRecord> read = [.. reopened.ReadAll()];
        WalTestKit.AssertSameRecords(records, read);
        Assert.Equal(positions, read.Select(r => r.Position));
        for (int i = 0; i < records.Count; i += 37)
        {
            Assert.Equal(records[i].Payload, reopened.ReadPayload(positions[i]));
        }

        Assert.Equal(records.Skip(250).Select(r => r.Type), reopened.ReadAll(positions[250]).Select(r => r.Type));
    }

    [Fact]
    public async Task A_payload_given_as_a_header_span_and_a_multi_segment_sequence_is_stored_as_one_contiguous_payload()
    {
        byte[] header = WalTestKit.Payload(1, 11);
        byte[] body = WalTestKit.Payload(2, 5000);
        WalPosition position;
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path))
        {
            ReadOnlySequence<byte> sequence = Relayd.Tests.Infrastructure.SegmentedSequence.Of(body, chunkSize: 700);
            Assert.False(sequence.IsSingleSegment);
            Assert.True(log.TryAppend(3, header, sequence, out position));
            await log.WaitForCommitAsync(WriteAheadLog.EndOf(position, header.Length + body.Length), TestContext.Current.CancellationToken);

            byte[] destination = new byte[6000];
            int length = log.ReadPayload(position, destination);
            Assert.Equal([.. header, .. body], destination[..length]);
        }

        using WriteAheadLog reopened = WalTestKit.Open(_dir.Path);
        WalRecord record = Assert.Single(reopened.ReadAll());
        Assert.Equal([.. header, .. body], record.Payload.ToArray());
    }

    [Fact]
    public async Task Records_that_do_not_fit_go_to_the_next_segment_and_never_span_two()
    {
        List<(byte Type, byte[] Payload)> records = WalTestKit.Records(60, maxLength: 9000, seed: 5);
        List<WalPosition> positions;
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path))
        {
            positions = await WalTestKit.AppendAndCommitAsync(log, records);
            Assert.True(log.Segments.Count >= 4, $"{log.Segments.Count} segments");
            Assert.Equal(Enumerable.Range(1, log.Segments.Count).Select(n => (ulong)n), log.Segments);
        }

        for (int i = 0; i < records.Count; i++)
        {
            Assert.True(WriteAheadLog.EndOf(positions[i], records[i].Payload.Length).Offset <= WalTestKit.SmallSegment);
            if (i > 0)
            {
                Assert.True(positions[i] > positions[i - 1]);
            }
        }

        Assert.All(Directory.GetFiles(_dir.Path, "wal-*.log"), f => Assert.Equal(WalTestKit.SmallSegment, new FileInfo(f).Length));
        using WriteAheadLog reopened = WalTestKit.OpenObserved(_dir.Path, out List<WalRecord> seen);
        WalTestKit.AssertSameRecords(records, [.. reopened.ReadAll()]);
        WalTestKit.AssertSameRecords(records, seen); // the open scan told its observer of each record, sealed segments and the last
        Assert.Equal(positions, seen.Select(r => r.Position));
        Assert.Equal(records[^1].Payload, reopened.ReadPayload(positions[^1]));
        Assert.Equal(records[0].Payload, reopened.ReadPayload(positions[0]));
    }

    [Fact]
    public async Task A_record_up_to_the_payload_limit_is_accepted_and_a_larger_one_or_type_0_is_refused()
    {
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);
        Assert.Equal(WalTestKit.SmallSegment - 16, log.MaxPayloadBytes);
        byte[] largest = WalTestKit.Payload(1, log.MaxPayloadBytes);

        Assert.Throws<ArgumentException>(() => log.TryAppend(1, new byte[log.MaxPayloadBytes + 1], out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => log.TryAppend(0, new byte[1], out _));
        List<WalPosition> positions = await WalTestKit.AppendAndCommitAsync(log, [(1, [1, 2, 3]), (2, largest)]);

        Assert.Equal(new WalPosition(2, 0), positions[1]); // did not fit behind the first record: a segment of its own
        Assert.Equal(largest, log.ReadPayload(positions[1]));
    }

    [Fact]
    public async Task Appending_allocates_nothing_per_record_once_warmed_up()
    {
        using WriteAheadLog log = WalTestKit.Open(_dir.Path, segmentBytes: 16 * 1024 * 1024);
        byte[] header = new byte[24];
        ReadOnlySequence<byte> body = Relayd.Tests.Infrastructure.SegmentedSequence.Of(WalTestKit.Payload(1, 1000), chunkSize: 400);
        await CountAllocatingAppends(2000); // warm-up: JIT, tiering, lazily created lock state

        int allocating = await CountAllocatingAppends(10_000);

        // Counted rather than summed: when the runtime retires this thread's allocation context (a GC or a suspension
        // for another test running in parallel), its unused rest, up to 8 KiB, shows up once as "allocated". An
        // allocation per record would show up in every one of the 10,000 appends.
        Assert.InRange(allocating, 0, 5);

        async Task<int> CountAllocatingAppends(int count)
        {
            int allocatingAppends = 0;
            for (int i = 0; i < count; i++)
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                bool appended = log.TryAppend(1, header, body, out _);
                if (GC.GetAllocatedBytesForCurrentThread() != before)
                {
                    allocatingAppends++;
                }

                if (!appended)
                {
                    await log.WaitForSpaceAsync(TestContext.Current.CancellationToken);
                }
            }

            return allocatingAppends;
        }
    }

    [Fact]
    public async Task Durability_is_reported_in_order_through_the_event_the_property_and_commit_waits()
    {
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);
        var committed = new List<WalPosition>();
        log.Committed += p =>
        {
            lock (committed)
            {
                committed.Add(p);
            }
        };

        List<(byte Type, byte[] Payload)> records = WalTestKit.Records(200, maxLength: 500);
        List<WalPosition> positions = await WalTestKit.AppendAndCommitAsync(log, records);
        WalPosition end = WriteAheadLog.EndOf(positions[^1], records[^1].Payload.Length);

        Assert.Equal(end, log.DurablePosition);
        lock (committed)
        {
            Assert.Equal(end, committed[^1]);
            Assert.Equal(committed.Order(), committed);
        }

        Assert.True(log.WaitForCommitAsync(positions[10], TestContext.Current.CancellationToken).AsTask().IsCompletedSuccessfully);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.ReadPayload(end)); // nothing there yet
    }

    [Fact]
    public void A_directory_can_be_open_by_one_log_at_a_time()
    {
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);

        IOException refused = Assert.Throws<IOException>(() => WalTestKit.Open(_dir.Path));
        Assert.Contains("in use", refused.Message, StringComparison.Ordinal);
    }
}
