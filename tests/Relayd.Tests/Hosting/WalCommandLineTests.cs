using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Hosting;

/// <summary><c>relayd wal verify</c> and <c>relayd wal repair</c> as an admin runs them, on a real damaged log.</summary>
public sealed class WalCommandLineTests
{
    [Fact]
    public async Task Verify_names_the_corrupt_segment_and_offset_and_repair_quarantines_the_damage()
    {
        using var dir = new TempWalDirectory();
        List<WalPosition> positions;
        using (WriteAheadLog log = WalTestKit.Open(dir.Path))
        {
            positions = await WalTestKit.AppendAndCommitAsync(log, Enumerable.Range(1, 5).Select(i => ((byte)1, WalTestKit.Payload(i, 100))));
        }

        // Damage the payload of the second of five records: later valid records make it corruption, not a torn tail.
        string segment = dir.Segment(positions[1].Segment);
        await using (var file = new FileStream(segment, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = positions[1].Offset + 20;
            int b = file.ReadByte();
            file.Position = positions[1].Offset + 20;
            file.WriteByte((byte)(b ^ 0xFF));
        }

        ExternalProcess.Result verify = await ExternalProcess.RunRelaydAsync("wal", "verify", "--dir", dir.Path);
        ExternalProcess.Result repair = await ExternalProcess.RunRelaydAsync("wal", "repair", "--dir", dir.Path);
        ExternalProcess.Result verifyAgain = await ExternalProcess.RunRelaydAsync("wal", "verify", "--dir", dir.Path);

        Assert.NotEqual(0, verify.ExitCode);
        Assert.Contains(Path.GetFileName(segment), verify.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"offset {positions[1].Offset}", verify.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("CORRUPT", verify.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(0, repair.ExitCode);
        Assert.Contains("quarantine", repair.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(0, verifyAgain.ExitCode);
        Assert.True(Directory.Exists(Path.Combine(dir.Path, "quarantine")));
    }

    [Theory]
    [InlineData("verify")]
    [InlineData("repair")]
    public async Task On_a_directory_that_does_not_exist_both_commands_say_so_in_one_line(string command)
    {
        string missing = Path.Combine(Path.GetTempPath(), $"relayd-no-wal-{Guid.NewGuid():N}");

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("wal", command, "--dir", missing);

        string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 66));
        Assert.Equal($"relayd: {missing}: no such directory (relayd creates its write-ahead log there when it first starts)", line);
        Assert.False(Directory.Exists(missing));
    }

    [Fact]
    public async Task Repair_while_the_log_is_open_is_refused_in_one_line()
    {
        using var dir = new TempWalDirectory();
        using WriteAheadLog open = WalTestKit.Open(dir.Path);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("wal", "repair", "--dir", dir.Path);

        string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 74));
        Assert.Equal($"relayd: the WAL in {dir.Path} is in use by another process ({Path.Combine(dir.Path, "wal.lock")} is locked)", line);
    }
}
