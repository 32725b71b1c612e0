using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// What systemd listens on for sd_notify: a real AF_UNIX datagram socket in a temporary directory. Give
/// <see cref="Path"/> to a relay as NOTIFY_SOCKET; every datagram it sends is kept, in order.
/// </summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("relayd-notify-");
    private readonly ConcurrentQueue<string> _received = new();
    private readonly Task _receiving;

    public NotifySocket()
    {
        Path = System.IO.Path.Combine(_directory.FullName, "notify.sock");
        _socket.Bind(new UnixDomainSocketEndPoint(Path));
        _receiving = Task.Run(ReceiveAsync);
    }

    public string Path { get; }

    /// <summary>Every datagram so far, in arrival order.</summary>
    public IReadOnlyList<string> Received => [.. _received];

    /// <summary>Waits for a datagram that <paramref name="match"/> accepts (one received before the call counts); returns its index.</summary>
    public async Task<int> WaitForAsync(Func<string, bool> match, string what, int seconds = 30, int from = 0)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            IReadOnlyList<string> received = Received;
            for (int i = from; i < received.Count; i++)
            {
                if (match(received[i]))
                {
                    return i;
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"no notification {what} within {seconds} s; received:\n" + string.Join("\n---\n", received));
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Waits for a datagram with the line <paramref name="assignment"/> (<c>READY=1</c>); returns its index.</summary>
    public Task<int> WaitForLineAsync(string assignment, int seconds = 30, int from = 0) =>
        WaitForAsync(d => d.Split('\n').Contains(assignment), assignment, seconds, from);

    private async Task ReceiveAsync()
    {
        byte[] buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int length = await _socket.ReceiveAsync(buffer, SocketFlags.None);
                _received.Enqueue(Encoding.UTF8.GetString(buffer, 0, length));
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Disposed.
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        _receiving.Wait(TimeSpan.FromSeconds(5));
        _directory.Delete(recursive: true);
    }
}
