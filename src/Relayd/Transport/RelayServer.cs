using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Relayd.Delivery;
using Relayd.Protocol.V1;
using Relayd.Diagnostics;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Storage.WalStore;
using Relayd.Security;

namespace Relayd.Transport;

/// <summary>
/// The relay: accepts TCP connections, runs mutual TLS 1.3, admits approved partners and hosts their sessions.
/// </summary>
internal sealed class RelayServer : IAsyncDisposable, ISettlementSink
{
    private readonly RelayOptions _options;
    private readonly SslStreamCertificateContext _serverCertificate;
    private readonly PartnerCertificateValidator _validator;
    private readonly ConcurrentDictionary<long, PartnerSession> _sessions = new();
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _listenSocket;
    private Task _acceptLoop = Task.CompletedTask;
    private Task _heartbeat = Task.CompletedTask;
    private Task _maintenance = Task.CompletedTask;
    private bool _storeClosed;
    private long _nextConnectionId;
    private volatile bool _shuttingDown;

    public RelayServer(RelayOptions options, X509Certificate2 serverCertificate, PartnerCertificateValidator validator, ILogger logger, TimeProvider? clock = null)
    {
        _options = options;
        _serverCertificate = SslStreamCertificateContext.Create(serverCertificate, additionalCertificates: null, offline: true);
        _validator = validator;
        Logger = logger;
        Clock = clock ?? TimeProvider.System;
        Metrics = new RelayMetrics();
        Partners = new PartnerDirectory(options);

        // Recovery runs before the relay listens: every envelope acknowledged before a crash is back in its queue.
        Store = WalEnvelopeStore.Open(options.Storage, logger, Metrics);
        try
        {
            var recovery = new QueueRecovery(Partners, Store, logger);
            recovery.Run(Clock.GetUtcNow().ToUnixTimeMilliseconds());
            Settle(recovery.Expired);

            // Replaying a large log allocates a buffer per record; give that memory back before serving.
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
        catch
        {
            Store.Dispose();
            throw;
        }

        Router = new EnvelopeRouter(Partners, Store, options.Limits, Clock);
        Maintenance = new QueueMaintenance(Store, Partners, this, options.Storage.RetentionInterval, Clock, logger);
        Media = new Media.MediaRouter(options.Media, options.Partners, Partners, options.Limits, logger, Clock, Metrics);
        Refusals = new RefusalAggregator(options.Limits.RefusalLogInterval, logger, Metrics);
    }

    public RelayLimits Limits => _options.Limits;

    public string RelayId => _options.RelayId;

    public ILogger Logger { get; }

    /// <summary>This relay's counters and histograms (its own <see cref="RelayMetrics.Meter"/>).</summary>
    public RelayMetrics Metrics { get; }

    public TimeProvider Clock { get; }

    public PartnerDirectory Partners { get; }

    public EnvelopeRouter Router { get; }

    /// <summary>Where accepted envelopes are kept until settled (the write-ahead log).</summary>
    public IEnvelopeStore Store { get; }

    public QueueMaintenance Maintenance { get; }

    public StorageMetrics StorageMetrics => Store.CaptureMetrics(MailboxBacklog.Capture(Partners));

    public Media.MediaRouter Media { get; }

    /// <summary>Where every refusal is counted before it is logged, so that a flood of them costs a few lines.</summary>
    public RefusalAggregator Refusals { get; }

    public bool IsShuttingDown => _shuttingDown;

    /// <summary>Where the relay listens (the real port when 0 was configured).</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)(_listenSocket?.LocalEndPoint ?? throw new InvalidOperationException("not started"));

    public IReadOnlyCollection<PartnerSession> Sessions => (IReadOnlyCollection<PartnerSession>)_sessions.Values;

    /// <summary>Binds <paramref name="endpoint"/> and listens (<see cref="Listen"/>), then serves (<see cref="Start()"/>).</summary>
    public void Start(IPEndPoint endpoint)
    {
        Listen(endpoint);
        Start();
    }

    /// <summary>Binds the listen socket; nothing is accepted until <see cref="Start()"/>.</summary>
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

    /// <summary>Starts accepting on the socket <see cref="Listen"/> bound, and the heartbeat and storage maintenance.</summary>
    public void Start()
    {
        Socket socket = _listenSocket ?? throw new InvalidOperationException("Listen first");
        RelayLog.Listening(Logger, RelayId, socket.LocalEndPoint!, Partners.Partners.Length, Limits.ShardCount);
        _acceptLoop = AcceptLoopAsync(_stopping.Token);
        _heartbeat = HeartbeatAsync(_stopping.Token);
        _maintenance = Maintenance.RunAsync(_stopping.Token);
    }

    /// <summary>Graceful stop: GoAway to every session, then up to <see cref="RelayLimits.ShutdownTimeout"/> for them to finish.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_shuttingDown)
        {
            return;
        }

        _shuttingDown = true;
        if (_listenSocket is null)
        {
            CloseStore(); // never listened (the start was refused): nothing to drain, nothing to report
            return;
        }

        _listenSocket?.Dispose();
        foreach (PartnerSession session in _sessions.Values)
        {
            session.RequestClose(ErrorCode.ShuttingDown, "the relay is shutting down");
        }

        RelayLog.ShuttingDown(Logger, _sessions.Count);
        Task all = Task.WhenAll(_connections.Values);
        await Task.WhenAny(all, Task.Delay(Limits.ShutdownTimeout, cancellationToken));
        int remaining = _sessions.Count;
        foreach (PartnerSession session in _sessions.Values)
        {
            session.Abort();
        }

        TimeSpan abortGrace = TimeSpan.FromSeconds(2); // aborted sessions only unwind; the host allows shutdown_timeout_ms + 5 s in all
        await Task.WhenAny(all, Task.Delay(abortGrace, CancellationToken.None));
        await _stopping.CancelAsync();
        await Task.WhenAll(_acceptLoop, _heartbeat, _maintenance);
        Refusals.Flush(Environment.TickCount64 + (long)Limits.RefusalLogInterval.TotalMilliseconds);
        StorageLog.Summary(Logger, StorageMetrics.ToString());
        CloseStore();
        RelayLog.Stopped(Logger, remaining);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        CloseStore(); // also when the relay never started
        Media.Dispose();
        Metrics.Dispose();
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

    /// <summary>
    /// The fate of envelopes is decided (acknowledged or expired): receipts to their senders, and the log told they
    /// are settled so that they are not delivered again and their segments can go.
    /// </summary>
    public void Settle(List<SettledEnvelope> settled)
    {
        if (settled.Count == 0)
        {
            return;
        }

        DispatchReceipts(settled);
    }

    private void CloseStore()
    {
        if (!_storeClosed)
        {
            _storeClosed = true;
            Store.Dispose();
        }
    }

    internal void Register(PartnerSession session) => _sessions[session.ConnectionId] = session;

    internal void Unregister(PartnerSession session) => _sessions.TryRemove(session.ConnectionId, out _);

    /// <summary>
    /// Sends receipts to a connected session of each sender partner, one lock per run of the same sender, and tells
    /// the log: settled when a session has them (or nobody is left to tell), settled with the receipts held when the
    /// sender is away (a restart then holds them again). Rearranges <paramref name="receipts"/> in place.
    /// </summary>
    private void DispatchReceipts(List<SettledEnvelope> receipts)
    {
        Span<SettledEnvelope> all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(receipts);
        int settled = 0; // all[..settled]: handed to a session, or nobody to tell; one Settle call for them below
        int start = 0;
        while (start < all.Length)
        {
            PartnerInfo? sender = all[start].Sender;
            int end = start + 1;
            while (end < all.Length && ReferenceEquals(all[end].Sender, sender))
            {
                end++;
            }

            Span<SettledEnvelope> run = all[start..end];
            PartnerSession? session = sender?.Mailbox.PickConsumer(0) as PartnerSession;
            if (sender is not null && session is null)
            {
                Hold(sender, run);
            }
            else
            {
                session?.EnqueueReceipts(run); // a sender partner no longer approved (null) has nobody to tell
                run.CopyTo(all[settled..]);
                settled += run.Length;
            }

            start = end;
        }

        Store.Settle(all[..settled]);
    }

    private void Hold(PartnerInfo partner, ReadOnlySpan<SettledEnvelope> receipts)
    {
        Store.SettleHeld(receipts);
        var dropped = new List<SettledEnvelope>();
        partner.HeldReceipts.Hold(receipts, dropped);
        if (dropped.Count > 0)
        {
            RelayLog.ReceiptsDropped(Logger, dropped.Count, partner.Id);
            Store.Settle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(dropped));
        }

        // A session may have opened and taken the held receipts between the check and the hold.
        if (partner.Mailbox.PickConsumer(0) is PartnerSession late)
        {
            late.EnqueueHeldReceipts();
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
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || _shuttingDown)
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
        var transport = new StallWatchStream(new NetworkStream(socket, ownsSocket: true), Metrics);
        var stream = new SslStream(transport, leaveInnerStreamOpen: false);
        string? refusal = null;
        var tls = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _serverCertificate,
            ClientCertificateRequired = true,
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateChainPolicy = _validator.CreatePolicy(),

            // No session tickets or cache: a resumed session skips the client certificate, so a certificate that
            // expired or was revoked (CRL reloaded) would keep working for the ticket's lifetime. Every connection
            // presents and validates its certificate.
            AllowTlsResume = false,
            RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                refusal = _validator.Validate(certificate, chain, errors);
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
            if (Refusals.ShouldLog(RefusalKind.HandshakeTimeout, remote, "no TLS handshake in time", Environment.TickCount64))
            {
                RelayLog.HandshakeTimedOut(Logger, id, remote, Limits.HandshakeTimeout.TotalMilliseconds);
            }

            await stream.DisposeAsync();
            return;
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException or System.ComponentModel.Win32Exception)
        {
            string why = refusal ?? ex.Message;
            if (Refusals.ShouldLog(RefusalKind.TlsHandshake, remote, why, Environment.TickCount64))
            {
                RelayLog.TlsRefused(Logger, id, remote, why);
            }

            await stream.DisposeAsync();
            return;
        }

        PartnerInfo? partner = Admit(id, remote, stream, out ErrorCode code, out string reason);
        if (partner is null)
        {
            await RefuseAsync(stream, code, reason);
            return;
        }

        var session = new PartnerSession(this, id, stream, transport, partner, remote);
        try
        {
            await session.RunAsync(handshakeDeadline.Token);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
        {
            RelayLog.WriteFailed(Logger, id, ex);
        }
    }

    private PartnerInfo? Admit(long id, EndPoint? remote, SslStream stream, out ErrorCode code, out string reason)
    {
        var certificate = stream.RemoteCertificate as X509Certificate2;
        string? partnerId = certificate is null ? null : PartnerIdentity.TryRead(certificate, out reason);
        if (partnerId is null)
        {
            code = ErrorCode.UnknownPartner;
            reason = certificate is null ? "no client certificate" : PartnerIdentityReason(certificate);
            LogRefusal(id, remote, code, reason);
            return null;
        }

        PartnerInfo? partner = Partners.Find(partnerId);
        if (partner is null)
        {
            code = ErrorCode.PartnerNotApproved;
            reason = $"partner '{partnerId}' is not approved on this relay";
            LogRefusal(id, remote, code, reason);
            return null;
        }

        code = ErrorCode.Unspecified;
        reason = "";
        return partner;
    }

    /// <summary>Logs an admission refusal in full, or counts it into the summary of its kind.</summary>
    internal void LogRefusal(long id, EndPoint? remote, ErrorCode code, string reason)
    {
        if (Refusals.ShouldLog(RefusalKind.Admission, remote, $"{Protocol.ProtoNames.Of(code)}: {reason}", Environment.TickCount64))
        {
            RelayLog.PartnerRefused(Logger, id, remote, code, reason);
        }
    }

    private static string PartnerIdentityReason(X509Certificate2 certificate)
    {
        PartnerIdentity.TryRead(certificate, out string reason);
        return reason;
    }

    private static async Task RefuseAsync(SslStream stream, ErrorCode code, string reason)
    {
        try
        {
            var frame = new Frame { Error = new Error { Code = code, Detail = reason, Fatal = true } };
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
                foreach (PartnerSession session in _sessions.Values)
                {
                    session.CheckIdle(now, Limits.IdleTimeout);
                    session.CheckProgress(now);
                }

                Refusals.Flush(now);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
