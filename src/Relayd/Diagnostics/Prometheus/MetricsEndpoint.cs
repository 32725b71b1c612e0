using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics.Prometheus;

/// <summary>
/// The opt-in HTTP endpoint for Prometheus and probes: <c>GET /metrics</c> (text format 0.0.4), <c>/healthz</c> and
/// <c>/readyz</c> (200 "ok", or 503 with the reason). One request per connection, answered and closed.
/// </summary>
/// <remarks>
/// A minimal HTTP/1.x server on a <see cref="Socket"/> rather than <see cref="HttpListener"/>: both are AOT-clean,
/// but the managed HttpListener on Linux bounds neither a request head's size nor the time it may take to arrive
/// (the header-wait and body timeouts of <c>HttpListenerTimeoutManager</c> are Windows-only), so a client that trickles
/// bytes could hold connections for ever. Here a request head may be at most <see cref="MaxRequestBytes"/> and must arrive, and its
/// answer be taken, within <see cref="RequestTimeout"/>; at most <see cref="MaxConnections"/> are served at a time,
/// the rest closed at once. A scraper needs nothing more (Prometheus reconnects per scrape happily).
/// </remarks>
internal sealed class MetricsEndpoint : IAsyncDisposable
{
    /// <summary>Largest request head (request line and headers) read; Prometheus sends about 300 bytes.</summary>
    public const int MaxRequestBytes = 8192;

    /// <summary>Connections served at a time; more are closed unanswered.</summary>
    public const int MaxConnections = 16;

    /// <summary>Time a connection has to send its request head and take the answer.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    private readonly PrometheusExporter _exporter;
    private readonly IRelayProbe _probe;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _socket;
    private Task _acceptLoop = Task.CompletedTask;
    private int _connections;

    public MetricsEndpoint(PrometheusExporter exporter, IRelayProbe probe, ILogger logger)
    {
        _exporter = exporter;
        _probe = probe;
        _logger = logger;
    }

    /// <summary>Where it listens (the real port when 0 was configured).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)(_socket?.LocalEndPoint ?? throw new InvalidOperationException("not started"));

    /// <summary>Binds <paramref name="endpoint"/> and starts answering.</summary>
    /// <exception cref="MetricsListenException">The address is in use or cannot be bound.</exception>
    public void Start(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endpoint);
            socket.Listen(MaxConnections);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw new MetricsListenException(endpoint.ToString(), ex);
        }

        _socket = socket;
        RelayLog.MetricsListening(_logger, LocalEndPoint);
        _acceptLoop = AcceptLoopAsync(socket, _stopping.Token);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        await _stopping.CancelAsync();
        if (_socket is { } socket)
        {
            IPEndPoint endpoint = LocalEndPoint;
            socket.Dispose();
            await _acceptLoop;
            RelayLog.MetricsStopped(_logger, endpoint);
        }

        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync(Socket listener, CancellationToken stopping)
    {
        await Task.Yield(); // the caller goes on with the start
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stopping);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || stopping.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
            {
                continue; // the client gave up before we accepted it
            }
            catch (SocketException ex)
            {
                RelayLog.MetricsAcceptFailed(_logger, ex);
                return;
            }

            if (Interlocked.Increment(ref _connections) > MaxConnections)
            {
                Interlocked.Decrement(ref _connections);
                RelayLog.MetricsTooManyConnections(_logger, client.RemoteEndPoint, MaxConnections);
                client.Dispose();
                continue;
            }

            _ = ServeAsync(client, stopping);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken stopping)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(MaxRequestBytes);
        EndPoint? remote = client.RemoteEndPoint;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(RequestTimeout);
        try
        {
            Response response = await ReadRequestAsync(client, buffer, deadline.Token) is { } head
                ? Answer(head)
                : Response.Text(431, "Request Header Fields Too Large", $"request head over {MaxRequestBytes} bytes");
            if (response.Status >= 400 && response.Status != 503)
            {
                RelayLog.MetricsRequestRefused(_logger, remote, response.Status, response.Reason);
            }

            await client.SendAsync(response.Encode(), SocketFlags.None, deadline.Token);
            client.Shutdown(SocketShutdown.Send);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            RelayLog.MetricsRequestTimedOut(_logger, remote, RequestTimeout.TotalSeconds);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The client went away, or the relay is stopping: nothing to answer.
        }
        catch (EndOfStreamException)
        {
            // Closed before a whole request head: nothing to answer.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            client.Dispose();
            Interlocked.Decrement(ref _connections);
        }
    }

    /// <summary>The request head (request line and headers, ASCII), or null when it does not fit in <see cref="MaxRequestBytes"/>.</summary>
    /// <exception cref="EndOfStreamException">The client closed before the head was whole.</exception>
    private static async Task<string?> ReadRequestAsync(Socket client, byte[] buffer, CancellationToken deadline)
    {
        int length = 0;
        while (true)
        {
            int received = await client.ReceiveAsync(buffer.AsMemory(length, MaxRequestBytes - length), SocketFlags.None, deadline);
            if (received == 0)
            {
                throw new EndOfStreamException();
            }

            int searchFrom = Math.Max(0, length - HeadEnd.Length + 1);
            length += received;
            int end = buffer.AsSpan(searchFrom, length - searchFrom).IndexOf(HeadEnd);
            if (end >= 0)
            {
                return Encoding.ASCII.GetString(buffer, 0, searchFrom + end);
            }

            if (length == MaxRequestBytes)
            {
                return null;
            }
        }
    }

    private Response Answer(string head)
    {
        int lineEnd = head.IndexOf("\r\n", StringComparison.Ordinal);
        string[] requestLine = (lineEnd >= 0 ? head[..lineEnd] : head).Split(' ');
        if (requestLine.Length != 3 || !requestLine[2].StartsWith("HTTP/1.", StringComparison.Ordinal) || !requestLine[1].StartsWith('/'))
        {
            return Response.Text(400, "Bad Request", "expected a request line \"GET /path HTTP/1.1\"");
        }

        string method = requestLine[0];
        if (method is not ("GET" or "HEAD"))
        {
            return Response.Text(405, "Method Not Allowed", $"{method} is not served; GET /metrics, /healthz or /readyz") with { Allow = true };
        }

        string path = requestLine[1];
        int query = path.IndexOf('?', StringComparison.Ordinal);
        Response response = (query >= 0 ? path[..query] : path) switch
        {
            "/metrics" => new Response(200, "OK", PrometheusText.ContentType, _exporter.Collect()),
            "/healthz" => _probe.HealthProblem() is { } problem ? Response.Text(503, "Service Unavailable", problem) : Response.Text(200, "OK", "ok"),
            "/readyz" => _probe.NotReadyReason() is { } reason ? Response.Text(503, "Service Unavailable", reason) : Response.Text(200, "OK", "ok"),
            _ => Response.Text(404, "Not Found", "not found; the endpoint serves /metrics, /healthz and /readyz"),
        };
        return method == "HEAD" ? response with { OmitBody = true } : response;
    }

    private readonly record struct Response(int Status, string Reason, string ContentType, byte[] Body)
    {
        public bool Allow { get; init; }

        public bool OmitBody { get; init; }

        public static Response Text(int status, string reason, string body) =>
            new(status, reason, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes(body + "\n"));

        public byte[] Encode()
        {
            string head = string.Create(CultureInfo.InvariantCulture,
                $"HTTP/1.1 {Status} {Reason}\r\nContent-Type: {ContentType}\r\nContent-Length: {Body.Length}\r\n{(Allow ? "Allow: GET, HEAD\r\n" : "")}Cache-Control: no-store\r\nConnection: close\r\n\r\n");
            byte[] headBytes = Encoding.ASCII.GetBytes(head);
            if (OmitBody)
            {
                return headBytes;
            }

            byte[] message = new byte[headBytes.Length + Body.Length];
            headBytes.CopyTo(message, 0);
            Body.CopyTo(message, headBytes.Length);
            return message;
        }
    }
}
