using System.Buffers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// A partner connection without the client library: bare SslStream, bytes written exactly as the test says.
/// For malformed input, stalled readers and TLS variations.
/// </summary>
internal sealed class RawPartnerConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private byte[] _pending = [];

    private RawPartnerConnection(TcpClient tcp, SslStream stream)
    {
        _tcp = tcp;
        Stream = stream;
    }

    public SslStream Stream { get; }

    /// <param name="receiveBufferBytes">SO_RCVBUF before connecting: small, so that a connection that stops reading stalls the relay's writes soon.</param>
    public static async Task<RawPartnerConnection> ConnectAsync(int port, X509Certificate2? certificate, X509Certificate2 relayCa, SslProtocols protocols = SslProtocols.Tls13, int? receiveBufferBytes = null)
    {
        var tcp = new TcpClient { NoDelay = true };
        if (receiveBufferBytes is int bytes)
        {
            tcp.ReceiveBufferSize = bytes;
        }

        await tcp.ConnectAsync("127.0.0.1", port, TestContext.Current.CancellationToken);
        var stream = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocols,
            ClientCertificateContext = certificate is null ? null : SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { relayCa }, RevocationMode = X509RevocationMode.NoCheck },
        };
        await stream.AuthenticateAsClientAsync(options, TestContext.Current.CancellationToken);
        return new RawPartnerConnection(tcp, stream);
    }

    public async Task SendAsync(Frame frame)
    {
        using var buffer = new MemoryStream();
        frame.WriteDelimitedTo(buffer);
        await Stream.WriteAsync(buffer.ToArray(), TestContext.Current.CancellationToken);
    }

    public async Task SendHelloAsync()
    {
        var hello = new Hello { Agent = "raw-test" };
        hello.Versions.Add(ProtocolVersion._1);
        await SendAsync(new Frame { Hello = hello });
    }

    /// <summary>Reads the next frame; null when the relay closed the connection.</summary>
    public async Task<Frame?> ReadFrameAsync(int timeoutSeconds = 10) =>
        await ReadFrameBytesAsync(timeoutSeconds) is { } body ? Frame.Parser.ParseFrom(body) : null;

    /// <summary>Reads the next frame's body exactly as the relay wrote it (no length prefix); null when the relay closed the connection.</summary>
    public async Task<byte[]?> ReadFrameBytesAsync(int timeoutSeconds = 10)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(timeoutSeconds));
        byte[] chunk = new byte[64 * 1024];
        while (true)
        {
            var buffer = new ReadOnlySequence<byte>(_pending);
            if (FrameReader.TryReadFrame(ref buffer, 16 * 1024 * 1024, out ReadOnlySequence<byte> frame))
            {
                byte[] body = frame.ToArray();
                _pending = buffer.ToArray();
                return body;
            }

            int read;
            try
            {
                read = await Stream.ReadAsync(chunk, timeout.Token);
            }
            catch (IOException)
            {
                return null;
            }

            if (read == 0)
            {
                return null;
            }

            _pending = [.. _pending, .. chunk.AsSpan(0, read)];
        }
    }

    /// <summary>Reads frames until the relay closes; returns them.</summary>
    public async Task<List<Frame>> ReadUntilClosedAsync(int timeoutSeconds = 10)
    {
        var frames = new List<Frame>();
        while (await ReadFrameAsync(timeoutSeconds) is { } frame)
        {
            frames.Add(frame);
        }

        return frames;
    }

    public async ValueTask DisposeAsync()
    {
        await Stream.DisposeAsync();
        _tcp.Dispose();
    }
}
