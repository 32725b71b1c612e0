using System.Buffers.Binary;
using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>Group commit: one log writer syncs whatever many appending threads added meanwhile, with no timer.</summary>
public sealed class WalGroupCommitTests : IDisposable
{
    private const int Threads = 8;
    private const int PerThread = 2000;

    private readonly TempWalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Eight_threads_appending_at_once_share_fsyncs_and_every_committed_record_survives_reopening()
    {
        long syncs;
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path, segmentBytes: 1024 * 1024))
        {
            using var start = new Barrier(Threads);
            Task[] appenders = [.. Enumerable.Range(0, Threads).Select(t => Task.Factory.StartNew(
                () => AppendAndCommit(log, t, start), TestContext.Current.CancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap())];
            await Task.WhenAll(appenders).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
            syncs = log.SyncCount;
            TestContext.Current.TestOutputHelper?.WriteLine($"{Threads * PerThread} records, {syncs} fdatasyncs, {log.Segments.Count} segments");
        }

        Assert.InRange(syncs, 1, (Threads * PerThread) - 1);

        using WriteAheadLog reopened = WalTestKit.Open(_dir.Path, segmentBytes: 1024 * 1024);
        List<WalRecord> records = [.. reopened.ReadAll()];
        Assert.Equal(Threads * PerThread, records.Count);
        var next = new int[Threads];
        foreach (WalRecord record in records)
        {
            // Each thread's records come back complete and in the order that thread appended them.
            int thread = record.Type - 1;
            Assert.Equal(next[thread]++, BinaryPrimitives.ReadInt32LittleEndian(record.Payload.Span));
            Assert.Equal(Payload(thread, next[thread] - 1), record.Payload.ToArray());
        }

        Assert.All(next, n => Assert.Equal(PerThread, n));
    }

    private static async Task AppendAndCommit(WriteAheadLog log, int thread, Barrier start)
    {
        start.SignalAndWait(TestContext.Current.CancellationToken);
        WalPosition end = default;
        for (int i = 0; i < PerThread; i++)
        {
            byte[] payload = Payload(thread, i);
            WalPosition position;
            while (!log.TryAppend((byte)(thread + 1), payload, out position))
            {
                await log.WaitForSpaceAsync(TestContext.Current.CancellationToken);
            }

            end = WriteAheadLog.EndOf(position, payload.Length);
            if (i % 100 == 99)
            {
                await log.WaitForCommitAsync(end, TestContext.Current.CancellationToken);
            }
        }

        await log.WaitForCommitAsync(end, TestContext.Current.CancellationToken);
    }

    private static byte[] Payload(int thread, int sequence)
    {
        byte[] payload = WalTestKit.Payload((thread * 1_000_000) + sequence, 64 + (sequence % 200));
        BinaryPrimitives.WriteInt32LittleEndian(payload, sequence);
        return payload;
    }
}
