using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>
/// A full disk when a new segment is needed is a clear, recoverable refusal (nothing acknowledged is affected), not a
/// failure of the log. Uses a tiny tmpfs, so it needs root (it is skipped otherwise).
/// </summary>
public sealed class WalDiskSpaceTests : IDisposable
{
    private readonly TempWalDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_space_left_on_the_log_s_filesystem_is_reported()
    {
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);

        long available = log.AvailableBytes();

        Assert.InRange(available, 1, new DriveInfo(_dir.Path).TotalSize);
    }

    [Fact]
    public async Task A_full_disk_refuses_appends_that_need_a_new_segment_with_WalDiskFullException_until_space_is_freed()
    {
        // 200 KiB holds three 64 KiB segments: the fourth cannot be pre-written.
        ExternalProcess.Result mount;
        try
        {
            mount = await ExternalProcess.RunAsync("mount", ["-t", "tmpfs", "-o", "size=200k", "tmpfs", _dir.Path]);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Assert.Skip($"no mount command: {ex.Message}");
            return;
        }

        Assert.SkipWhen(mount.ExitCode != 0, $"cannot mount a tmpfs here (needs root): {mount.StandardError.Trim()}");
        try
        {
            await FillDiskThenFreeSpace();
        }
        finally
        {
            await ExternalProcess.RunAsync("umount", [_dir.Path]);
        }
    }

    private async Task FillDiskThenFreeSpace()
    {
        using WriteAheadLog log = WalTestKit.Open(_dir.Path);
        var appended = new List<(WalPosition Position, byte[] Payload)>();
        WalDiskFullException? full = null;
        for (int i = 0; full is null && i < 1000; i++)
        {
            byte[] payload = WalTestKit.Payload(i, 4000);
            try
            {
                appended.Add((await WalTestKit.AppendAsync(log, 1, payload), payload));
            }
            catch (WalDiskFullException ex)
            {
                full = ex;
            }
        }

        Assert.NotNull(full);
        Assert.Equal(28, full.InnerException?.HResult); // ENOSPC
        Assert.Contains("wal-0000000000000004.log", full.Message, StringComparison.Ordinal);
        Assert.Null(log.Failure);
        Assert.Equal(3UL, appended[^1].Position.Segment);
        Assert.False(File.Exists(_dir.Segment(4) + ".tmp"));
        await log.WaitForCommitAsync(WriteAheadLog.EndOf(appended[^1].Position, 4000), TestContext.Current.CancellationToken);

        log.DeleteSegmentsBefore(3);
        byte[] after = WalTestKit.Payload(-1, 4000);
        WalPosition position = default;
        for (DateTime deadline = DateTime.UtcNow.AddSeconds(10); position == default;)
        {
            try
            {
                position = await WalTestKit.AppendAsync(log, 2, after);
            }
            catch (WalDiskFullException) when (DateTime.UtcNow < deadline)
            {
                // The log waits a second after a failed pre-write before it tries again.
                await Task.Delay(100, TestContext.Current.CancellationToken);
            }
        }

        await log.WaitForCommitAsync(WriteAheadLog.EndOf(position, after.Length), TestContext.Current.CancellationToken);

        Assert.Equal(4UL, position.Segment);
        Assert.Equal(after, log.ReadPayload(position));
        Assert.Equal(appended[^1].Payload, log.ReadPayload(appended[^1].Position));
    }
}
