using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using Relayd.Security;

namespace Relayd.Benchmarks;

/// <summary>
/// Why the relay writes in large blocks: each SslStream write is a TLS record and a syscall. 64 frames of 1 KiB
/// written one by one versus in one combined write, over real loopback TLS 1.3.
/// </summary>
[MemoryDiagnoser]
public class TlsWriteBatchingBenchmarks
{
    private const int Frames = 64;
    private const int FrameBytes = 1024;
    private readonly byte[] _combined = new byte[Frames * FrameBytes];
    private SslStream _client = null!;
    private SslStream _server = null!;
    private Task _drain = Task.CompletedTask;
    private TcpListener _listener = null!;

    [GlobalSetup]
    public void Setup()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        X509Certificate2 ca = CertificateFactory.CreateCa("bench CA", now.AddDays(-1), now.AddDays(1));
        X509Certificate2 serverCertificate = X509CertificateLoader.LoadPkcs12(
            CertificateFactory.IssueServer(ca, ["localhost"], [IPAddress.Loopback], now.AddHours(-1), now.AddDays(1)).Export(X509ContentType.Pkcs12), null);
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        var client = new TcpClient { NoDelay = true };
        Task<TcpClient> accept = _listener.AcceptTcpClientAsync();
        client.Connect(IPAddress.Loopback, ((IPEndPoint)_listener.LocalEndpoint).Port);
        TcpClient serverSide = accept.GetAwaiter().GetResult();
        serverSide.NoDelay = true;
        _server = new SslStream(serverSide.GetStream());
        _client = new SslStream(client.GetStream());
        Task serverHandshake = _server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = serverCertificate, EnabledSslProtocols = SslProtocols.Tls13 });
        var trust = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { ca }, RevocationMode = X509RevocationMode.NoCheck };
        _client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = SslProtocols.Tls13, CertificateChainPolicy = trust }).GetAwaiter().GetResult();
        serverHandshake.GetAwaiter().GetResult();
        _drain = Task.Run(async () =>
        {
            byte[] sink = new byte[256 * 1024];
            while (await _client.ReadAsync(sink) > 0)
            {
            }
        });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _server.Dispose();
        _client.Dispose();
        _listener.Stop();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Frames)]
    public async Task OneWritePerFrame()
    {
        for (int i = 0; i < Frames; i++)
        {
            await _server.WriteAsync(_combined.AsMemory(i * FrameBytes, FrameBytes));
        }
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public async Task OneCombinedWrite() => await _server.WriteAsync(_combined);
}
