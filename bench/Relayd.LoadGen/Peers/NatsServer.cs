using System.Threading.Channels;
using NATS.Client.Core;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// A nats-server child process on a free 127.0.0.1 port, configured in a scratch directory to require TLS client
/// certificates from the dev CA (<c>verify: true</c>), optionally with JetStream file storage in the same directory.
/// </summary>
internal sealed class NatsServer : IAsyncDisposable
{
    // nats-server sends INFO in clear, then expects the TLS handshake; inside TLS a client must CONNECT before PING.
    private static readonly TlsProbe Probe = new(PlaintextGreeting: true, Ping: "CONNECT {\"verbose\":false}\r\nPING\r\n", Pong: "PONG");

    private readonly PeerPki _pki;
    private readonly ScratchDirectory _directory;
    private readonly ServerProcess _process;
    private readonly int _port;

    private NatsServer(PeerPki pki, ScratchDirectory directory, ServerProcess process, int port)
    {
        _pki = pki;
        _directory = directory;
        _process = process;
        _port = port;
    }

    /// <summary>Process id of nats-server.</summary>
    public int Pid => _process.Pid;

    /// <summary>Starts nats-server and waits until it answers a ping over TLS with our client certificate.</summary>
    public static async Task<NatsServer> StartAsync(PeerPki pki, bool jetStream, CancellationToken cancellationToken)
    {
        string binary = ServerProcess.FindBinary("nats-server", "nats-server");
        var directory = new ScratchDirectory("relayd-loadgen-nats-");
        ServerProcess? process = null;
        try
        {
            int port = LoopbackPort.PickFree();
            string config = directory.PathOf("nats.conf");
            await File.WriteAllTextAsync(config, Config(pki, port, jetStream ? directory.PathOf("jetstream") : null), cancellationToken);
            process = await ServerProcess.StartAsync("nats-server", binary, ["--config", config], directory.Path, cancellationToken);
            using (var tls = new PeerTls(pki))
            {
                await process.WaitUntilTlsReadyAsync(tls, port, Probe, cancellationToken);
            }

            return new NatsServer(pki, directory, process, port);
        }
        catch
        {
            if (process is not null)
            {
                await process.DisposeAsync();
            }

            directory.Dispose();
            throw;
        }
    }

    /// <summary>Opens a client connection with the client certificate, verifying the server against the dev CA.</summary>
    public async Task<NatsConnection> ConnectAsync(string name, CancellationToken cancellationToken)
    {
        var connection = new NatsConnection(NatsOpts.Default with
        {
            Url = $"tls://127.0.0.1:{_port}",
            Name = name,
            TlsOpts = new NatsTlsOpts
            {
                Mode = TlsMode.Require,
                CaFile = _pki.CaCertPath,
                CertFile = _pki.ClientCertPath,
                KeyFile = _pki.ClientKeyPath,
            },
            // The client's default drops messages when a subscription's buffer is full; a benchmark must not lose
            // deliveries inside the client, so the reader waits instead and NATS's own flow control applies.
            SubPendingChannelFullMode = BoundedChannelFullMode.Wait,
            // Replies (JetStream acks) are matched directly instead of through the shared inbox's muxer.
            RequestReplyMode = NatsRequestReplyMode.Direct,
        });
        try
        {
            await connection.ConnectAsync().AsTask().WaitAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops nats-server and deletes its configuration and data.</summary>
    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        _directory.Dispose();
    }

    private static string Config(PeerPki pki, int port, string? jetStreamDirectory)
    {
        string config = $$"""
            # Written by relayd-loadgen for one run; deleted when it ends.
            listen: "127.0.0.1:{{port}}"
            tls {
              cert_file: "{{pki.ServerCertPath}}"
              key_file: "{{pki.ServerKeyPath}}"
              ca_file: "{{pki.CaCertPath}}"
              verify: true
              timeout: 5
            }

            """;
        return jetStreamDirectory is null
            ? config
            : config + $$"""
                jetstream {
                  store_dir: "{{jetStreamDirectory}}"
                }

                """;
    }
}
