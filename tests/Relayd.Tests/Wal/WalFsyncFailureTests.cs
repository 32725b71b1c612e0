using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>
/// A failed fdatasync is fatal (PostgreSQL's rule): the batch never counts as durable, the sync is never retried,
/// every waiter and every later append fails, and <see cref="WriteAheadLog.Failed"/> fires once.
/// </summary>
public sealed class WalFsyncFailureTests : IDisposable
{
    private readonly TempWalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The real fdatasync until armed, then EIO, counting calls.</summary>
    private sealed class FlakyDisk : IWalFileSync
    {
        public volatile bool Failing;
        public int CallsWhileFailing;

        public int FDataSync(SafeFileHandle file)
        {
            if (Failing)
            {
                Interlocked.Increment(ref CallsWhileFailing);
                return 5; // EIO
            }

            return LibcFileSync.Instance.FDataSync(file);
        }
    }

    [Fact]
    public async Task An_fdatasync_error_fails_the_waiting_commit_and_the_log_for_good_without_advancing_durability()
    {
        var disk = new FlakyDisk();
        var logger = new ListLogger();
        List<(byte Type, byte[] Payload)> committed = WalTestKit.Records(50, maxLength: 500);
        using (WriteAheadLog log = WalTestKit.Open(_dir.Path, sync: disk, logger: logger))
        {
            var failed = new List<Exception>();
            log.Failed += failed.Add;
            await WalTestKit.AppendAndCommitAsync(log, committed);
            WalPosition durable = log.DurablePosition;

            await SpareSegmentReady();
            disk.Failing = true;
            WalPosition position = await WalTestKit.AppendAsync(log, 1, [1, 2, 3]);
            ValueTask commit = log.WaitForCommitAsync(WriteAheadLog.EndOf(position, 3), TestContext.Current.CancellationToken);

            WalFailedException error = await Assert.ThrowsAsync<WalFailedException>(() => commit.AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
            IOException cause = Assert.IsType<IOException>(error.InnerException);
            Assert.Equal(5, cause.HResult);
            Assert.Contains("fdatasync", cause.Message, StringComparison.Ordinal);
            Assert.Same(cause, log.Failure);
            Assert.Equal(durable, log.DurablePosition);
            Assert.Same(cause, Assert.Single(failed));
            Assert.Throws<WalFailedException>(() => log.TryAppend(1, [4], out _));
            await Assert.ThrowsAsync<WalFailedException>(() => log.WaitForCommitAsync(new WalPosition(99, 0), TestContext.Current.CancellationToken).AsTask());
            await Assert.ThrowsAsync<WalFailedException>(() => log.WaitForSpaceAsync(TestContext.Current.CancellationToken).AsTask());
            await Task.Delay(100, TestContext.Current.CancellationToken);
            Assert.Equal(1, disk.CallsWhileFailing); // never retried
            Assert.Contains(logger.Entries, e => e.Level == LogLevel.Critical && e.Id.Id == 520);
        }

        using WriteAheadLog reopened = WalTestKit.Open(_dir.Path);
        Assert.Equal(committed.Select(r => r.Payload), reopened.ReadAll().Take(committed.Count).Select(r => r.Payload.ToArray()));
    }

    [Fact]
    public async Task Every_commit_waiter_fails_when_the_log_fails()
    {
        var disk = new FlakyDisk();
        using WriteAheadLog log = WalTestKit.Open(_dir.Path, sync: disk);
        await SpareSegmentReady();
        disk.Failing = true;
        var waits = new List<Task>();
        for (int i = 0; i < 20 && log.Failure is null; i++)
        {
            WalPosition position;
            try
            {
                position = await WalTestKit.AppendAsync(log, 1, new byte[100]);
            }
            catch (WalFailedException)
            {
                break; // the first batch already failed the log
            }

            waits.Add(log.WaitForCommitAsync(WriteAheadLog.EndOf(position, 100), TestContext.Current.CancellationToken).AsTask());
        }

        Assert.NotEmpty(waits);

        foreach (Task wait in waits)
        {
            await Assert.ThrowsAsync<WalFailedException>(() => wait.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        }

        Assert.Equal(new WalPosition(1, 0), log.DurablePosition);
    }

    /// <summary>Waits for the background pre-write of segment 2, so that only commits meet the failing disk.</summary>
    private async Task SpareSegmentReady()
    {
        for (int i = 0; i < 500 && !File.Exists(_dir.Segment(2)); i++)
        {
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }

        Assert.True(File.Exists(_dir.Segment(2)));
    }
}
