using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// One connection through a <see cref="FaultProxy"/>: the client's socket, the socket to the target, and a reader and
/// a writer per direction. The reader stamps each chunk with the time it may leave (its direction's delay); the writer
/// sends it then, counting bytes against the direction's cut limit.
/// </summary>
/// <remarks>
/// A clean end is passed on as such: EOF from one side becomes a FIN to the other once everything read was forwarded.
/// </remarks>
internal sealed class FaultProxyConnection
{
    private const int ChunkBytes = 16 * 1024;
    private const int Open = 0;
    private const int Cut = 1;
    private const int Dropped = 2;

    /// <summary>How long a cut connection may take to close by itself after the FINs before both sockets are closed.</summary>
    private static readonly TimeSpan CutGrace = TimeSpan.FromSeconds(2);

    private readonly FaultProxy _proxy;
    private readonly Socket _client;
    private readonly Socket _target;
    private readonly Lock _lock = new();
    private readonly long[] _received = new long[2];
    private readonly long[] _forwarded = new long[2];
    private readonly long[] _cutAfter;
    private readonly CancellationTokenSource _faulted = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state = Open;
    private int _socketsClosed;

    internal FaultProxyConnection(FaultProxy proxy, Socket client, Socket target, long cutToTargetAfter, long cutToClientAfter)
    {
        _proxy = proxy;
        _client = client;
        _target = target;
        _cutAfter = [cutToTargetAfter, cutToClientAfter];
        TargetSideEndPoint = (IPEndPoint)target.LocalEndPoint!;
    }

    /// <summary>The proxy's end of the connection to the target: the remote address the target sees (and logs).</summary>
    public IPEndPoint TargetSideEndPoint { get; }

    /// <summary>Completes once both sockets are closed and nothing more is forwarded.</summary>
    public Task Closed => _closed.Task;

    /// <summary>True once a cut limit was reached (the connection was cut there).</summary>
    public bool WasCut => Volatile.Read(ref _state) == Cut;

    /// <summary>True once the connection was dropped.</summary>
    public bool WasDropped => Volatile.Read(ref _state) == Dropped;

    /// <summary>Bytes the proxy read from the sending side of <paramref name="direction"/>.</summary>
    public long BytesReceived(ProxyDirection direction) => Interlocked.Read(ref _received[(int)direction]);

    /// <summary>Bytes the proxy passed on in <paramref name="direction"/> (never more than its cut limit).</summary>
    public long BytesForwarded(ProxyDirection direction)
    {
        lock (_lock)
        {
            return _forwarded[(int)direction];
        }
    }

    /// <summary>Forwards <paramref name="bytes"/> more bytes of <paramref name="direction"/>, then cuts the connection.</summary>
    public void CutAfterMore(ProxyDirection direction, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        lock (_lock)
        {
            _cutAfter[(int)direction] = _forwarded[(int)direction] + bytes;
        }

        if (bytes == 0)
        {
            CutNow();
        }
    }

    /// <summary>Closes both sides now with a reset; whatever is in flight is lost. Also ends a cut connection's grace.</summary>
    public void Drop()
    {
        if (!_closed.Task.IsCompleted && Interlocked.CompareExchange(ref _state, Dropped, Open) == Open)
        {
            _faulted.Cancel();
        }

        CloseSockets(reset: true);
    }

    internal void Start()
    {
        _ = RunAsync();
        if (_cutAfter[0] == 0 || _cutAfter[1] == 0)
        {
            CutNow();
        }
    }

    private async Task RunAsync()
    {
        try
        {
            await Task.WhenAll(
                PumpAsync(ProxyDirection.ToTarget, _client, _target),
                PumpAsync(ProxyDirection.ToClient, _target, _client));
        }
        finally
        {
            CloseSockets(reset: false);
            _closed.TrySetResult();
        }
    }

    private async Task PumpAsync(ProxyDirection direction, Socket from, Socket to)
    {
        // Bounded, so a stalled receiver backs up to the sender as it would without the proxy.
        var chunks = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(64) { SingleReader = true, SingleWriter = true });
        await Task.WhenAll(ReadAsync(direction, from, chunks.Writer), WriteAsync(direction, to, chunks.Reader));
    }

    private async Task ReadAsync(ProxyDirection direction, Socket from, ChannelWriter<Chunk> chunks)
    {
        try
        {
            while (true)
            {
                byte[] buffer = new byte[ChunkBytes];
                int read = await from.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
                if (read == 0)
                {
                    return;
                }

                Interlocked.Add(ref _received[(int)direction], read);
                if (Volatile.Read(ref _state) == Open)
                {
                    long due = Stopwatch.GetTimestamp() + (long)(_proxy.DelayOf(direction).TotalSeconds * Stopwatch.Frequency);
                    await chunks.WriteAsync(new Chunk(buffer, read, due));
                }

                // After a cut or drop: keep reading (and discarding) until the peer closes, so it is not reset.
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // The sending side reset or the proxy closed the socket: end of this direction.
        }
        finally
        {
            chunks.TryComplete();
        }
    }

    private async Task WriteAsync(ProxyDirection direction, Socket to, ChannelReader<Chunk> chunks)
    {
        bool forwarding = true;
        await foreach (Chunk chunk in chunks.ReadAllAsync())
        {
            if (!forwarding || Volatile.Read(ref _state) != Open)
            {
                continue; // drained, so the reader never blocks on a full channel
            }

            try
            {
                await WaitUntilAsync(chunk.DueTimestamp);
                int allowed = Take(direction, chunk.Length, out bool reachedLimit);
                for (int sent = 0; sent < allowed;)
                {
                    sent += await to.SendAsync(chunk.Buffer.AsMemory(sent, allowed - sent), SocketFlags.None, _faulted.Token);
                }

                if (reachedLimit)
                {
                    CutNow();
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // Cut or dropped meanwhile, or the receiving side is gone: nothing more goes this way.
                forwarding = false;
                if (ex is not OperationCanceledException)
                {
                    Abort();
                }
            }
        }

        if (forwarding && Volatile.Read(ref _state) == Open)
        {
            // The sender closed cleanly and all it sent went through: pass its FIN on.
            ShutdownSend(to);
        }
    }

    /// <summary>Counts what may still go in <paramref name="direction"/> before its cut limit.</summary>
    private int Take(ProxyDirection direction, int length, out bool reachedLimit)
    {
        lock (_lock)
        {
            int d = (int)direction;
            int allowed = (int)Math.Min(length, _cutAfter[d] - _forwarded[d]);
            _forwarded[d] += allowed;
            reachedLimit = _forwarded[d] >= _cutAfter[d];
            return allowed;
        }
    }

    private async Task WaitUntilAsync(long dueTimestamp)
    {
        TimeSpan left;
        while ((left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), dueTimestamp)) > TimeSpan.Zero)
        {
            // Timers may fire a little early; wait again for the rest rather than forward before the delay is over.
            await Task.Delay(left + TimeSpan.FromMilliseconds(1), _faulted.Token);
        }
    }

    /// <summary>Stops forwarding and sends a FIN both ways after what was forwarded; closes for good after a grace period.</summary>
    private void CutNow()
    {
        if (Interlocked.CompareExchange(ref _state, Cut, Open) != Open)
        {
            return;
        }

        _faulted.Cancel();
        ShutdownSend(_client);
        ShutdownSend(_target);
        _ = CloseAfterGraceAsync();
    }

    private async Task CloseAfterGraceAsync()
    {
        await Task.WhenAny(_closed.Task, Task.Delay(CutGrace));
        CloseSockets(reset: false);
    }

    /// <summary>One side failed while the connection was open: the other side is closed too, as a broken link would be.</summary>
    private void Abort()
    {
        if (Interlocked.CompareExchange(ref _state, Dropped, Open) == Open)
        {
            _faulted.Cancel();
            CloseSockets(reset: true);
        }
    }

    private void CloseSockets(bool reset)
    {
        if (Interlocked.Exchange(ref _socketsClosed, 1) == 1)
        {
            return;
        }

        foreach (Socket socket in (Socket[])[_client, _target])
        {
            try
            {
                if (reset)
                {
                    socket.LingerState = new LingerOption(true, 0);
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already gone.
            }

            socket.Dispose();
        }
    }

    private static void ShutdownSend(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already closed.
        }
    }

    private readonly record struct Chunk(byte[] Buffer, int Length, long DueTimestamp);
}
