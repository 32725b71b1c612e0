using System.Net.Sockets;
using Relayd.Diagnostics.Journal;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Diagnostics.Journal;

/// <summary>
/// relayd logs natively only when stderr really is the journal: <c>JOURNAL_STREAM</c> (<c>DEVICE:INODE</c>, as
/// systemd sets it from <c>fstat</c>) must name the socket on the file descriptor, not just be inherited.
/// </summary>
public sealed class JournalStreamTests
{
    [Fact]
    public async Task A_socket_on_the_descriptor_matches_the_device_and_inode_stat_reports_for_it()
    {
        using var pair = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        int fd = (int)pair.Handle;
        string journalStream = await DeviceAndInode(fd); // what systemd would put in JOURNAL_STREAM for this socket

        Assert.True(JournalStream.IsFileDescriptor(journalStream, fd), $"JOURNAL_STREAM={journalStream}, fd {fd} -> {new FileInfo($"/proc/self/fd/{fd}").LinkTarget}");
    }

    [Fact]
    public async Task Another_socket_or_a_file_does_not_match()
    {
        using var journal = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var other = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        string journalStream = await DeviceAndInode((int)journal.Handle);
        string file = Path.GetTempFileName();
        try
        {
            using FileStream stream = File.OpenRead(file);

            Assert.False(JournalStream.IsFileDescriptor(journalStream, (int)other.Handle));
            Assert.False(JournalStream.IsFileDescriptor(journalStream, (int)stream.SafeFileHandle.DangerousGetHandle()));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(null, "socket:[123]")]
    [InlineData("", "socket:[123]")]
    [InlineData("8:123", null)]
    [InlineData("8:123", "/dev/pts/0")]
    [InlineData("8:123", "pipe:[123]")]
    [InlineData("8:123", "socket:[1234]")]
    [InlineData("8", "socket:[8]")]
    [InlineData("8:x", "socket:[123]")]
    public void Anything_but_the_named_socket_is_not_the_journal(string? journalStream, string? target)
    {
        Assert.False(JournalStream.Matches(journalStream, target));
    }

    [Fact]
    public void The_named_socket_is_the_journal()
    {
        Assert.True(JournalStream.Matches("8:123", "socket:[123]"));
    }

    /// <summary><c>DEVICE:INODE</c> of this process's <paramref name="fd"/>, from coreutils' stat(1) (the fstat systemd uses).</summary>
    private static async Task<string> DeviceAndInode(int fd)
    {
        ExternalProcess.Result stat = await ExternalProcess.RunAsync("stat", ["-L", "-c", "%d:%i", $"/proc/{Environment.ProcessId}/fd/{fd}"]);
        Assert.True(stat.ExitCode == 0, stat.StandardError);
        return stat.StandardOutput.Trim();
    }
}
