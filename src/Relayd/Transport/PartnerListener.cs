using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Security;

namespace Relayd.Transport;

/// <summary>
/// Where partners connect: binds the listen socket, accepts, runs mutual TLS 1.3, admits the partner its certificate
/// names, and hosts the session; a heartbeat pings idle sessions and closes stalled ones; a graceful stop sends GoAway
/// and drains.
/// </summary>
internal sealed class PartnerListener : IDisposable
{
    private readonly SessionServices _services;
    private readonly PartnerDirectory _partners;
    private volatile ServerTls _tls; // a reload swaps both at once; a handshake takes one snapshot
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listenSocket;
    private Task _acceptLoop = Task.CompletedTask;
    private Task _heartbeat = Task.CompletedTask;
    private long _nextConnectionId;

    public PartnerListener(SessionServices services, PartnerDirectory partners, X509Certificate2 serverCertificate, PartnerCertificateValidator validator)
    {
        _services = services;
        _partners = partners;
        _tls = new ServerTls(SslStreamCertificateContext.Create(serverCertificate, additionalCertificates: null, offline: true), validator);
    }

    /// <summary>The server certificate and the partner trust (CA bundle, CRL) handshakes use.</summary>
    private sealed record ServerTls(SslStreamCertificateContext Certificate, PartnerCertificateValidator Validator);

    /// <summary>
    /// Makes new connections use <paramref name="serverCertificate"/> and <paramref name="validator"/> (a reload rotated
    /// the certificate, the partner CA bundle or the CRL). Sessions already open keep their TLS session.
    /// </summary>
    public void ReplaceTls(X509Certificate2 serverCertificate, PartnerCertificateValidator validator) =>
        _tls = new ServerTls(SslStreamCertificateContext.Create(serverCertificate, additionalCertificates: null, offline: true), validator);

    /// <summary>
    /// False once the accept loop has ended while the relay was not stopping (it died): the watchdog stops its
    /// pings so that systemd restarts the relay.
    /// </summary>
    public bool IsAccepting => _acceptLoop is { IsCompleted: false } || _services.IsShuttingDown;

    /// <summary>
    /// Sends GoAway to every session of <paramref name="partner"/> (it was removed or suspended); a session still open
    /// <see cref="RelayLimits.ShutdownTimeout"/> later is aborted. Returns how many.
    /// </summary>
    public int GoAway(PartnerInfo partner, ErrorCode code, string detail)
    {
        List<PartnerSession> leaving = [];
        foreach (PartnerSession session in _services.Sessions)
        {
            if (ReferenceEquals(session.Partner, partner))
            {
                session.RequestGoAway(code, detail);
                leaving.Add(session);
            }
        }

        if (leaving.Count > 0)
        {
            _ = AbortLaterAsync(leaving);
        }

        return leaving.Count;
    }

    private async Task AbortLaterAsync(List<PartnerSession> sessions)
    {
        try
        {
            await Task.Delay(Limits.ShutdownTimeout, _stopping.Token);
        }
        catch (OperationCanceledException)
        {
            return; // the relay stops: its own drain aborts what is left
        }

        foreach (PartnerSession session in sessions)
        {
            session.Abort(); // nothing if it closed already
        }
    }

    private RelayLimits Limits => _services.Limits;

    private ILogger Logger => _services.Logger;

    /// <summary>True once <see cref="Listen"/> has bound the socket.</summary>
    public bool IsListening => _listenSocket is not null;

    /// <summary>Where the relay listens (the real port when 0 was configured).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)(_listenSocket?.LocalEndPoint ?? throw new InvalidOperationException("not started"));

    /// <summary>Binds the listen socket; nothing is accepted until <see cref="Start"/>.</summary>
    /// <exception cref="SocketException">The port is in use (<see cref="SocketError.AddressAlreadyInUse"/>) or cannot be bound.</exception>
    public void Listen(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            AllowRebindOverClosedConnections(socket);
            socket.Bind(endpoint);
            socket.Listen(Limits.ListenBacklog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _listenSocket = socket;
    }

    /// <summary>Starts accepting on the socket <see cref="Listen"/> bound, and the heartbeat.</summary>
    public void Start()
    {
        Socket socket = _listenSocket ?? throw new InvalidOperationException("Listen first");
        RelayLog.Listening(Logger, _services.RelayId, socket.LocalEndPoint!, _partners.Partners.Length, Limits.ShardCount);
        _acceptLoop = AcceptLoopAsync(_stopping.Token);
        _heartbeat = HeartbeatAsync(_stopping.Token);
    }

    /// <summary>
    /// Graceful stop: no more connections, GoAway to every session, then up to <see cref="RelayLimits.ShutdownTimeout"/>
    /// for them to finish before the rest are aborted. Returns how many sessions were still open at the deadline.
    /// </summary>
    public async Task<int> StopAsync(CancellationToken cancellationToken)
    {
        _services.BeginShutdown();
        _listenSocket?.Dispose();
        foreach (PartnerSession session in _services.Sessions)
        {
            session.RequestClose(ErrorCode.ShuttingDown, "the relay is shutting down");
        }

        RelayLog.ShuttingDown(Logger, _services.SessionCount);
        Task all = Task.WhenAll(_connections.Values);
        await Task.WhenAny(all, Task.Delay(Limits.ShutdownTimeout, cancellationToken));
        int remaining = _services.SessionCount;
        foreach (PartnerSession session in _services.Sessions)
        {
            session.Abort();
        }

        TimeSpan abortGrace = TimeSpan.FromSeconds(2); // aborted sessions only unwind; the host allows shutdown_timeout_ms + 5 s in all
        await Task.WhenAny(all, Task.Delay(abortGrace, CancellationToken.None));
        await _stopping.CancelAsync();
        await Task.WhenAll(_acceptLoop, _heartbeat);
        return remaining;
    }

    public void Dispose()
    {
        _listenSocket?.Dispose();
        _stopping.Dispose();
    }

    /// <summary>
    /// SO_REUSEADDR alone, so that a restarted relay binds its port while the previous one's connections sit in
    /// TIME_WAIT. Not <see cref="SocketOptionName.ReuseAddress"/>: on Linux .NET maps it to SO_REUSEPORT as well, which
    /// lets a second relay listen on the same port and take about half of the new connections. (.NET also sets
    /// SO_REUSEADDR itself when it binds a TCP socket on Unix; setting it here keeps the relay from depending on that.)
    /// </summary>
    private static void AllowRebindOverClosedConnections(Socket socket)
    {
        const int SolSocket = 1;   // <asm-generic/socket.h>
        const int SoReuseAddr = 2;
        if (OperatingSystem.IsLinux())
        {
            socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
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
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || _services.IsShuttingDown)
            {
                return;
            }
            catch (SocketException ex)
            {
                RelayLog.AcceptFailed(Logger, ex);
                continue;
            }

            socket.NoDelay = true;
            long id = Interlocked.Increment(ref _nextConnectionId);
            Task connection = HandleConnectionAsync(id, socket);
            _connections[id] = connection;
            _ = connection.ContinueWith((_, state) => _connections.TryRemove((long)state!, out Task? _), id, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task HandleConnectionAsync(long id, Socket socket)
    {
        await Task.Yield();
        EndPoint? remote = socket.RemoteEndPoint;
        var transport = new StallWatchStream(new NetworkStream(socket, ownsSocket: true), _services.Metrics);
        var stream = new SslStream(transport, leaveInnerStreamOpen: false);
        string? refusal = null;
        ServerTls serverTls = _tls;
        PartnerCertificateValidator validator = serverTls.Validator;
        var tls = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = serverTls.Certificate,
            ClientCertificateRequired = true,
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateChainPolicy = validator.CreatePolicy(),

            // No session tickets or cache: a resumed session skips the client certificate, so a certificate that
            // expired or was revoked (CRL reloaded) would keep working for the ticket's lifetime. Every connection
            // presents and validates its certificate.
            AllowTlsResume = false,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                refusal = validator.Validate(certificate, chain, errors);
                return refusal is null;
            },
        };

        // One deadline for the TLS handshake and the Hello that must follow it.
        using var handshakeDeadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        handshakeDeadline.CancelAfter(Limits.HandshakeTimeout);
        try
        {
            await stream.AuthenticateAsServerAsync(tls, handshakeDeadline.Token);
        }
        catch (OperationCanceledException)
        {
            if (_services.Refusals.ShouldLog(RefusalKind.HandshakeTimeout, remote, "no TLS handshake in time", Environment.TickCount64))
            {
                RelayLog.HandshakeTimedOut(Logger, id, remote, Limits.HandshakeTimeout.TotalMilliseconds);
            }

            await stream.DisposeAsync();
            return;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or System.ComponentModel.Win32Exception)
        {
            string why = refusal ?? ex.Message;
            if (_services.Refusals.ShouldLog(RefusalKind.TlsHandshake, remote, why, Environment.TickCount64))
            {
                RelayLog.TlsRefused(Logger, id, remote, why);
            }

            await stream.DisposeAsync();
            return;
        }

        PartnerInfo? partner = Admit(id, remote, stream, out ErrorCode code, out string reason);
        if (partner is null)
        {
            uint retryAfterMs = code == ErrorCode.Draining ? (uint)Limits.QueueFullRetryAfter.TotalMilliseconds : 0;
            await RefuseAsync(stream, code, reason, retryAfterMs);
            return;
        }

        var session = new PartnerSession(_services, id, stream, transport, partner, remote);
        try
        {
            await session.RunAsync(handshakeDeadline.Token);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            RelayLog.WriteFailed(Logger, id, ex);
        }
    }

    /// <summary>The approved partner the client certificate names; null (logged, with the code and reason to send) when none.</summary>
    private PartnerInfo? Admit(long id, EndPoint? remote, SslStream stream, out ErrorCode code, out string reason)
    {
        var certificate = stream.RemoteCertificate as X509Certificate2;
        string? partnerId = certificate is null ? null : PartnerIdentity.TryRead(certificate, out reason);
        if (partnerId is null)
        {
            code = ErrorCode.UnknownPartner;
            reason = certificate is null ? "no client certificate" : PartnerIdentityReason(certificate);
            _services.LogRefusal(id, remote, code, reason);
            return null;
        }

        PartnerInfo? partner = _partners.Find(partnerId);
        if (partner is null)
        {
            code = ErrorCode.PartnerNotApproved;
            reason = $"partner '{partnerId}' is not approved on this relay";
            _services.LogRefusal(id, remote, code, reason);
            return null;
        }

        if (partner.IsSuspended || _services.IsDraining)
        {
            (code, reason) = partner.IsSuspended
                ? (ErrorCode.PartnerSuspended, $"partner '{partnerId}' is suspended on this relay")
                : (ErrorCode.Draining, "the relay is draining and takes no new sessions; connect to another relay or retry later");
            _services.LogRefusal(id, remote, code, reason);
            return null;
        }

        code = ErrorCode.Unspecified;
        reason = "";
        return partner;
    }

    private static string PartnerIdentityReason(X509Certificate2 certificate)
    {
        PartnerIdentity.TryRead(certificate, out string reason);
        return reason;
    }

    private static async Task RefuseAsync(SslStream stream, ErrorCode code, string reason, uint retryAfterMs)
    {
        try
        {
            var frame = new Frame { Error = new Error { Code = code, Detail = reason, Fatal = true, RetryAfterMs = retryAfterMs } };
            TimeSpan refusalWriteTimeout = TimeSpan.FromSeconds(2); // one small Error frame: a peer that does not take it in 2 s is not reading
            using var deadline = new CancellationTokenSource(refusalWriteTimeout);
            await stream.WriteAsync(frame.ToDelimitedArray(), deadline.Token);
            await stream.ShutdownAsync();
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The refusal is logged already; the peer left first.
        }
        finally
        {
            await stream.DisposeAsync();
        }
    }

    private async Task HeartbeatAsync(CancellationToken stopping)
    {
        // A quarter of the idle timeout keeps Ping and IDLE_TIMEOUT within 25% of it; 50 ms..1 s bounds the cost and the refusal summaries' delay.
        TimeSpan period = TimeSpan.FromMilliseconds(Math.Clamp(Limits.IdleTimeout.TotalMilliseconds / 4, 50, 1000));
        using var timer = new PeriodicTimer(period);
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                long now = Environment.TickCount64;
                foreach (PartnerSession session in _services.Sessions)
                {
                    session.CheckIdle(now, Limits.IdleTimeout);
                    session.CheckProgress(now);
                }

                _services.Refusals.Flush(now);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
