using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// A TCP proxy on a loopback port in front of a target (usually a relay), for fault tests. It forwards both
/// directions over real sockets, byte for byte (TLS passes through untouched), and injects what a network does to a
/// connection: <see cref="DropAll"/> (both sides closed at once), a delay per direction
/// (<see cref="DelayToTarget"/>, <see cref="DelayToClient"/>) and a cut after exactly N bytes of one direction
/// (<see cref="CutNewConnectionsAfter"/>, <see cref="FaultProxyConnection.CutAfterMore"/>).
/// </summary>
/// <remarks>
/// Two proxies in a row make the far one a tap: it counts what the near one really let through.
/// </remarks>
internal sealed class FaultProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Channel<FaultProxyConnection> _accepted = Channel.CreateUnbounded<FaultProxyConnection>();
    private readonly ConcurrentQueue<FaultProxyConnection> _connections = new();
    private readonly Task _acceptLoop;
    private long _delayToTargetTicks;
    private long _delayToClientTicks;
    private long _cutToTargetAfter = long.MaxValue;
    private long _cutToClientAfter = long.MaxValue;

    private FaultProxy(IPEndPoint target)
    {
        _target = target;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The port clients connect to (on 127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>Latency added to every byte going to the target, counted from when the proxy read it. Defaults to none.</summary>
    public TimeSpan DelayToTarget
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _delayToTargetTicks));
        set => Interlocked.Exchange(ref _delayToTargetTicks, value.Ticks);
    }

    /// <summary>Latency added to every byte going back to the client. Defaults to none.</summary>
    public TimeSpan DelayToClient
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _delayToClientTicks));
        set => Interlocked.Exchange(ref _delayToClientTicks, value.Ticks);
    }

    /// <summary>Every connection accepted so far, in accept order.</summary>
    public IReadOnlyList<FaultProxyConnection> Connections => [.. _connections];

    /// <summary>Starts a proxy to <c>127.0.0.1:<paramref name="targetPort"/></c>.</summary>
    public static FaultProxy Start(int targetPort) => new(new IPEndPoint(IPAddress.Loopback, targetPort));

    /// <summary>
    /// Connections accepted from now on forward the first <paramref name="bytes"/> bytes of
    /// <paramref name="direction"/> and are then cut (both sides closed after those bytes).
    /// </summary>
    public void CutNewConnectionsAfter(ProxyDirection direction, long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        if (direction == ProxyDirection.ToTarget)
        {
            Interlocked.Exchange(ref _cutToTargetAfter, bytes);
        }
        else
        {
            Interlocked.Exchange(ref _cutToClientAfter, bytes);
        }
    }

    /// <summary>The next connection the proxy accepts (each one is handed out once, in accept order).</summary>
    public async Task<FaultProxyConnection> NextConnectionAsync(int seconds = 10) =>
        await _accepted.Reader.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(seconds));

    /// <summary>Drops every open connection now: both sockets are reset, nothing in flight is forwarded.</summary>
    public void DropAll()
    {
        foreach (FaultProxyConnection connection in _connections)
        {
            connection.Drop();
        }
    }

    internal TimeSpan DelayOf(ProxyDirection direction) => direction == ProxyDirection.ToTarget ? DelayToTarget : DelayToClient;

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Dispose();
        await _acceptLoop;
        DropAll();
        await Task.WhenAll(_connections.Select(c => c.Closed));
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            var target = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await target.ConnectAsync(_target, _stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException)
            {
                // The target is gone: the client sees its connection refused the only way a proxy can, by a reset.
                client.LingerState = new LingerOption(true, 0);
                client.Dispose();
                target.Dispose();
                continue;
            }

            client.NoDelay = true;
            var connection = new FaultProxyConnection(this, client, target, Interlocked.Read(ref _cutToTargetAfter), Interlocked.Read(ref _cutToClientAfter));
            _connections.Enqueue(connection);
            _accepted.Writer.TryWrite(connection);
            connection.Start();
        }
    }
}
