using System.Net.Sockets;

namespace Relayd.Tests.Diagnostics.Journal;

/// <summary>A real AF_UNIX datagram socket in a temp directory standing where journald's socket would be.</summary>
internal sealed class JournalTestSocket : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("relayd-journal-").FullName;
    private Socket? _socket;

    public JournalTestSocket() => Bind();

    public string Path => System.IO.Path.Combine(_directory, "socket");

    /// <summary>Binds (again) at <see cref="Path"/>, as journald does when it starts.</summary>
    public void Bind()
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { ReceiveBufferSize = 1 << 20 };
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
    }

    /// <summary>Closes the socket and removes its file, as a stopped journald leaves things.</summary>
    public void Unbind()
    {
        _socket?.Dispose();
        _socket = null;
        File.Delete(Path);
    }

    /// <summary>The next datagram, parsed; fails the test when none comes within 10 s.</summary>
    public async Task<JournalDatagram> ReceiveAsync()
    {
        byte[] buffer = new byte[1 << 20];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            int received = await _socket!.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            return JournalDatagram.Parse(buffer.AsSpan(0, received));
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"no datagram reached the journal socket {Path} within 10 s");
            throw;
        }
    }

    /// <summary>Whether a datagram is waiting (to show that none was sent).</summary>
    public bool HasPending => _socket!.Available > 0;

    public void Dispose()
    {
        _socket?.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
