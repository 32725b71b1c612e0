using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;

namespace Relayd.Hosting.Control;

/// <summary>
/// The admin control socket: a unix stream socket (no TCP), mode 0660, created at start and removed at stop. Each
/// connection is authenticated by its peer's credentials (SO_PEERCRED) before anything is read, then answers JSON
/// lines (<see cref="ControlProtocol"/>) one at a time.
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    private const int MaxConnections = 16;                              // operators and scripts, not traffic
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30); // a connection waiting longer for a request is closed

    private readonly string _path;
    private readonly ControlAccess _access;
    private readonly ControlRequestHandler _handler;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private Socket? _listenSocket;
    private Task _acceptLoop = Task.CompletedTask;
    private long _nextId;

    public ControlServer(string path, ControlAccess access, ControlRequestHandler handler, ILogger logger)
    {
        _path = path;
        _access = access;
        _handler = handler;
        _logger = logger;
    }

    /// <summary>The control server of <paramref name="relay"/> as <paramref name="options"/> configure it (not started).</summary>
    public static ControlServer Create(RelayOptions options, Relay relay, Reload.IConfigReload? reload, ILogger logger)
    {
        uint ownUid = UnixAccounts.EffectiveUid();
        string? group = options.Control.Group;
        uint? gid = null;
        if (group is not null)
        {
            try
            {
                gid = UnixAccounts.GroupId(group);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                gid = null; // logged below as unknown
            }

            if (gid is null)
            {
                ControlLog.ControlGroupUnknown(logger, group, ownUid);
            }
        }

        var access = new ControlAccess(ownUid, gid is null ? null : group, gid);
        return new ControlServer(options.Control.SocketPath, access, new ControlRequestHandler(relay, options, reload, logger), logger);
    }

    /// <summary>The socket's path once <see cref="Start"/> bound it; null otherwise.</summary>
    public string? SocketPath => _listenSocket is null ? null : _path;

    /// <summary>
    /// Binds the socket and starts accepting. A socket file left by a relay that was killed is replaced; when the
    /// directory is missing, or a live relay answers on the path, the relay runs without one (logged) and this returns false.
    /// </summary>
    public bool Start()
    {
        string? directory = Path.GetDirectoryName(_path);
        if (directory is { Length: > 0 } && !Directory.Exists(directory))
        {
            ControlLog.ControlUnavailable(_logger, $"the directory {directory} of [control] socket does not exist (systemd's RuntimeDirectory=relayd creates /run/relayd)");
            return false;
        }

        if (File.Exists(_path) && !RemoveStale())
        {
            return false;
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(_path));
            if (OperatingSystem.IsWindows())
            {
                throw new PlatformNotSupportedException("the control socket needs Linux (SO_PEERCRED)");
            }

            File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
            if (_access.GroupId is uint gid)
            {
                UnixAccounts.SetGroup(_path, gid);
            }

            socket.Listen(MaxConnections);
        }
        catch (Exception ex) when (ex is SocketException or IOException or UnauthorizedAccessException)
        {
            socket.Dispose();
            ControlLog.ControlUnavailable(_logger, $"cannot create {_path}: {ex.Message}");
            return false;
        }

        _listenSocket = socket;
        ControlLog.ControlListening(_logger, _path, _access.Allowed);
        _acceptLoop = AcceptLoopAsync(_stopping.Token);
        return true;
    }

    /// <summary>Stops accepting, ends open connections and removes the socket file.</summary>
    public async Task StopAsync()
    {
        if (_listenSocket is not { } socket)
        {
            return;
        }

        _listenSocket = null;
        await _stopping.CancelAsync();
        socket.Dispose();
        await _acceptLoop;
        await Task.WhenAll(_connections.Values);
        try
        {
            File.Delete(_path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            ControlLog.ControlUnavailable(_logger, $"cannot remove {_path}: {ex.Message}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stopping.Dispose();
    }

    /// <summary>True when the file at the path is a socket nobody listens on any more (a killed relay's): deleted.</summary>
    private bool RemoveStale()
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(_path));
            ControlLog.ControlUnavailable(_logger, $"another process (a running relay?) listens on {_path}");
            return false;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
        {
            File.Delete(_path);
            return true;
        }
        catch (SocketException ex)
        {
            ControlLog.ControlUnavailable(_logger, $"{_path} exists and is not a stale socket: {ex.Message}");
            return false;
        }
    }

    private async Task AcceptLoopAsync(CancellationToken stopping)
    {
        Socket listener = _listenSocket!;
        while (!stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(stopping);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue; // the peer left before the accept completed
            }

            long id = Interlocked.Increment(ref _nextId);
            Task connection = ServeAsync(socket, stopping);
            _connections[id] = connection;
            _ = connection.ContinueWith((_, state) => _connections.TryRemove((long)state!, out Task? _), id, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(Socket socket, CancellationToken stopping)
    {
        await Task.Yield();
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            PeerCredentials peer = PeerCredentials.Read(socket);
            if (_access.Refusal(peer) is { } refusal)
            {
                ControlLog.ControlPeerRefused(_logger, peer.Uid, peer.Gid, peer.Pid, refusal);
                await WriteAsync(stream, ControlResponse.Failed(ControlErrors.PermissionDenied, refusal), stopping);
                return;
            }

            if (_connections.Count > MaxConnections)
            {
                await WriteAsync(stream, ControlResponse.Failed(ControlErrors.Busy, $"the control socket already serves {MaxConnections} connections; retry"), stopping);
                return;
            }

            PipeReader reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
            while (await ReadLineAsync(reader, stopping) is { } line)
            {
                if (line.Length > ControlProtocol.MaxRequestBytes)
                {
                    await WriteAsync(stream, ControlResponse.Failed(ControlErrors.RequestTooLarge, $"a request line may have at most {ControlProtocol.MaxRequestBytes} bytes"), stopping);
                    return;
                }

                ControlResponse response = await _handler.HandleAsync(line, peer, stopping);
                await WriteAsync(stream, response, stopping);
            }

            await reader.CompleteAsync();
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client left, was idle too long, or the relay is stopping.
        }
    }

    /// <summary>
    /// The next request line (without its newline); null at the end of the stream. A line that grows past the limit is
    /// returned as soon as it does (with more than the limit, for the caller to refuse) instead of being read in full.
    /// </summary>
    private static async Task<byte[]?> ReadLineAsync(PipeReader reader, CancellationToken stopping)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        idle.CancelAfter(IdleTimeout);
        while (true)
        {
            ReadResult read = await reader.ReadAsync(idle.Token);
            ReadOnlySequence<byte> buffer = read.Buffer;
            SequencePosition? newline = buffer.PositionOf((byte)'\n');
            if (newline is { } end)
            {
                byte[] line = buffer.Slice(0, end).ToArray();
                reader.AdvanceTo(buffer.GetPosition(1, end));
                return line;
            }

            if (buffer.Length > ControlProtocol.MaxRequestBytes)
            {
                byte[] tooLong = buffer.Slice(0, ControlProtocol.MaxRequestBytes + 1).ToArray();
                reader.AdvanceTo(buffer.End);
                return tooLong;
            }

            if (read.IsCompleted)
            {
                // A last request without its newline is still answered.
                byte[]? last = buffer.IsEmpty ? null : buffer.ToArray();
                reader.AdvanceTo(buffer.End);
                return last;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static async Task WriteAsync(NetworkStream stream, ControlResponse response, CancellationToken stopping)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(response, ControlJsonContext.Default.ControlResponse);
        await stream.WriteAsync(json, stopping);
        await stream.WriteAsync("\n"u8.ToArray(), stopping);
    }
}
