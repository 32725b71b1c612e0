using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading.Channels;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>
/// A partner server's connection to a relay: mutual TLS 1.3, Hello/Welcome, then envelopes out (each awaiting its
/// Ack) and deliveries and receipts in. Thread-safe: any number of concurrent <see cref="SendAsync"/> calls share the
/// connection, and their frames are written in combined blocks.
/// </summary>
/// <remarks>
/// The relay spreads a partner's deliveries over all of its connections, so every connection must consume
/// (<see cref="ConsumeAsync"/>, <see cref="ReadDeliveriesAsync"/> or <see cref="Deliveries"/>) and acknowledge, or the
/// conversations assigned to it wait. Deliveries not acknowledged when a connection closes go to another one.
/// </remarks>
public sealed partial class RelayClient : IAsyncDisposable
{
    private readonly RelayClientOptions _options;
    private readonly Socket _socket;
    private readonly SslStream _stream;
    private readonly PipeReader _input;
    // Never pauses: concurrent senders flush from many threads, and callers bound their own window by awaiting acks.
    private readonly Pipe _output = new(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, minimumSegmentSize: 64 * 1024, useSynchronizationContext: false));
    private readonly Lock _writeLock = new();
    private readonly Channel<Deliver> _deliveries;
    private readonly Channel<Receipt> _receipts;
    private readonly CancellationTokenSource _closed = new();
    private Task _readLoop = Task.CompletedTask;
    private Task _writeLoop = Task.CompletedTask;
    private Exception? _failure;
    private int _disposed;

    private RelayClient(RelayClientOptions options, Socket socket, SslStream stream)
    {
        _options = options;
        _socket = socket;
        _stream = stream;
        _input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4096, leaveOpen: true));
        _deliveries = Channel.CreateBounded<Deliver>(new BoundedChannelOptions(options.DeliveryBufferCapacity) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        _receipts = Channel.CreateBounded<Receipt>(new BoundedChannelOptions(options.ReceiptBufferCapacity) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
    }

    /// <summary>
    /// What the relay answered to Hello: the partner id it authenticated and the limits it holds this partner to (frame
    /// sizes both ways, idle timeout, connections, shards and delivery window, dedup window; see docs/protocol.md §3).
    /// </summary>
    public Welcome Welcome { get; private set; } = new();

    /// <summary>The partner id the relay read from this connection's certificate.</summary>
    public string PartnerId => Welcome.PartnerId;

    /// <summary>Completes when the connection has ended; faulted with the reason when the relay closed it on an error.</summary>
    public Task Completion => _readLoop;

    /// <summary>Connects, authenticates both ways and exchanges Hello/Welcome.</summary>
    /// <exception cref="RelayException">The relay refused the partner (e.g. PARTNER_NOT_APPROVED).</exception>
    /// <exception cref="AuthenticationException">TLS failed (e.g. the relay did not trust the certificate).</exception>
    public static async Task<RelayClient> ConnectAsync(RelayClientOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.ConnectTimeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? stream = null;
        try
        {
            await socket.ConnectAsync(options.Host, options.Port, deadline.Token);
            stream = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
            await stream.AuthenticateAsClientAsync(CreateTlsOptions(options), deadline.Token);
            var client = new RelayClient(options, socket, stream);
            await client.HandshakeAsync(deadline.Token);
            return client;
        }
        catch
        {
            if (stream is not null)
            {
                await stream.DisposeAsync();
            }

            socket.Dispose();
            throw;
        }
    }

    private static SslClientAuthenticationOptions CreateTlsOptions(RelayClientOptions options)
    {
        RelayClientTlsOptions settings = options.Tls;
        var tls = new SslClientAuthenticationOptions
        {
            TargetHost = settings.TargetHost ?? options.Host,
            EnabledSslProtocols = SslProtocols.Tls13,
            // Offline: building the client certificate's chain must not fetch AIA URLs from the network. Validate()
            // refused options without a certificate.
            ClientCertificateContext = SslStreamCertificateContext.Create(settings.ClientCertificate!, additionalCertificates: null, offline: true),
        };
        if (settings.RelayRoots is { } roots)
        {
            tls.CertificateChainPolicy = new System.Security.Cryptography.X509Certificates.X509ChainPolicy
            {
                TrustMode = System.Security.Cryptography.X509Certificates.X509ChainTrustMode.CustomRootTrust,
                DisableCertificateDownloads = true,
                RevocationMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
            };
            tls.CertificateChainPolicy.CustomTrustStore.AddRange(roots);
        }

        return tls;
    }

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        var hello = new Hello { Agent = _options.Agent, MaxFrameBytes = (uint)_options.MaxFrameBytes, AcceptsReadReceipts = _options.AcceptsReadReceipts, AcceptsTyping = _options.AcceptsTyping };
        hello.Versions.Add(ProtocolVersion._1);
        hello.AcceptedKinds.AddRange(_options.AcceptedKinds);
        FrameWriter.Write(_output.Writer, new Frame { Hello = hello });
        await _output.Writer.FlushAsync(cancellationToken);
        _writeLoop = WriteLoopAsync();

        Frame reply = await ReadFirstFrameAsync(cancellationToken);
        switch (reply.BodyCase)
        {
            case Frame.BodyOneofCase.Welcome:
                Welcome = reply.Welcome;
                _readLoop = ReadLoopAsync();
                return;
            case Frame.BodyOneofCase.Error:
                throw RelayException.FromError(reply.Error);
            default:
                throw new RelayException(ErrorCode.UnexpectedFrame, $"expected Welcome, got {reply.BodyCase}");
        }
    }

    private async Task<Frame> ReadFirstFrameAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result = await _input.ReadAsync(cancellationToken);
            System.Buffers.ReadOnlySequence<byte> buffer = result.Buffer;
            if (FrameReader.TryReadFrame(ref buffer, _options.MaxFrameBytes, out System.Buffers.ReadOnlySequence<byte> frame))
            {
                Frame parsed = Frame.Parser.ParseFrom(frame);
                _input.AdvanceTo(buffer.Start);
                return parsed;
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                throw new RelayException(ErrorCode.Unspecified, "the relay closed the connection before Welcome");
            }
        }
    }

    /// <summary>Gracefully closes: GoAway, then waits (up to <paramref name="timeout"/>) for outstanding acks and the relay's close.</summary>
    public async Task CloseAsync(TimeSpan? timeout = null)
    {
        TimeSpan wait = timeout ?? TimeSpan.FromSeconds(5);
        try
        {
            await WaitForPendingAcksAsync(wait);
            lock (_writeLock)
            {
                FrameWriter.Write(_output.Writer, new Frame { GoAway = new GoAway { Code = ErrorCode.Unspecified, Detail = "client closing" } });
                FlushUnderLock();
                _output.Writer.Complete();
            }

            await _writeLoop.WaitAsync(wait);
            await _readLoop.WaitAsync(wait);
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or RelayException or OperationCanceledException or InvalidOperationException)
        {
            // Closing regardless.
        }
        finally
        {
            await DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _closed.CancelAsync();

        Fail(new RelayException(ErrorCode.Unspecified, "the connection is closed"));
        await _stream.DisposeAsync();
        _socket.Dispose();
        try
        {
            await Task.WhenAll(_readLoop, _writeLoop).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Already reported through Completion and the pending sends.
        }

        _closed.Dispose();
    }
}
