using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using StackExchange.Redis;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// A redis-server child process listening only for TLS on a free 127.0.0.1 port, requiring client certificates from
/// the dev CA, with an append-only file in a scratch directory and RDB snapshots off.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private static readonly TlsProbe Probe = new(PlaintextGreeting: false, Ping: "PING\r\n", Pong: "+PONG");

    private readonly PeerTls _tls;
    private readonly PeerPki _pki;
    private readonly ScratchDirectory _directory;
    private readonly ServerProcess _process;
    private readonly int _port;

    private RedisServer(PeerTls tls, PeerPki pki, ScratchDirectory directory, ServerProcess process, int port)
    {
        _tls = tls;
        _pki = pki;
        _directory = directory;
        _process = process;
        _port = port;
    }

    /// <summary>Process id of redis-server.</summary>
    public int Pid => _process.Pid;

    /// <summary>Starts redis-server and waits until it answers a ping over TLS with our client certificate.</summary>
    /// <param name="fsyncAlways">appendfsync always (fsync before replying) instead of everysec.</param>
    public static async Task<RedisServer> StartAsync(PeerPki pki, bool fsyncAlways, CancellationToken cancellationToken)
    {
        string binary = ServerProcess.FindBinary("redis-server", "redis-server");
        var tls = new PeerTls(pki);
        var directory = new ScratchDirectory("relayd-loadgen-redis-");
        ServerProcess? process = null;
        try
        {
            int port = LoopbackPort.PickFree();
            string config = directory.PathOf("redis.conf");
            await File.WriteAllTextAsync(config, Config(pki, port, fsyncAlways, directory.Path), cancellationToken);
            process = await ServerProcess.StartAsync("redis-server", binary, [config], directory.Path, cancellationToken);
            await process.WaitUntilTlsReadyAsync(tls, port, Probe, cancellationToken);
            return new RedisServer(tls, pki, directory, process, port);
        }
        catch
        {
            if (process is not null)
            {
                await process.DisposeAsync();
            }

            directory.Dispose();
            tls.Dispose();
            throw;
        }
    }

    /// <summary>Opens a multiplexer, a single TLS connection, with the client certificate.</summary>
    public async Task<ConnectionMultiplexer> ConnectAsync(string name)
    {
        var options = new ConfigurationOptions
        {
            EndPoints = { { IPAddress.Loopback, _port } },
            Ssl = true,
            SslHost = "127.0.0.1",
            ClientName = name,
            AbortOnConnectFail = true,
            ConnectTimeout = 10_000,
            // Under appendfsync always a deep pipeline can wait on many fsyncs; a slow reply is a result, not an error.
            AsyncTimeout = 60_000,
            SyncTimeout = 60_000,
            // Without pub/sub the multiplexer opens no second connection, so one multiplexer is one connection.
            CommandMap = CommandMap.Create(["SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"], available: false),
        };
        options.SetUserPemCertificate(_pki.ClientCertPath, _pki.ClientKeyPath);
        options.CertificateValidation += _tls.ValidateServer;
        return await ConnectionMultiplexer.ConnectAsync(options);
    }

    /// <summary>
    /// Runs <c>redis-benchmark</c> against this server over the same mutual TLS: <paramref name="requests"/> XADDs of
    /// a <paramref name="payloadBytes"/> field to one stream from <paramref name="clients"/> connections, pipelining
    /// <paramref name="pipeline"/> each. Null when redis-benchmark is not installed (Debian: redis-tools).
    /// </summary>
    public async Task<(double PerSecond, string Command)?> RunRedisBenchmarkAsync(int clients, int pipeline, int requests, int payloadBytes, CancellationToken cancellationToken)
    {
        string binary;
        try
        {
            binary = ServerProcess.FindBinary("redis-benchmark", "redis-tools");
        }
        catch (InvalidOperationException)
        {
            return null;
        }

        string[] options = ["--tls", "--cert", _pki.ClientCertPath, "--key", _pki.ClientKeyPath, "--cacert", _pki.CaCertPath, "-h", "127.0.0.1", "-p", _port.ToString(CultureInfo.InvariantCulture),
            "-c", clients.ToString(CultureInfo.InvariantCulture), "-P", pipeline.ToString(CultureInfo.InvariantCulture), "-n", requests.ToString(CultureInfo.InvariantCulture), "-q"];
        var start = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in (string[])[.. options, "XADD", "load:check", "*", "p", new string('x', payloadBytes)])
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start redis-benchmark");
        Task<string> error = process.StandardError.ReadToEndAsync(cancellationToken);
        string output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        // -q prints progress lines ending in \r and last "<command>: N requests per second, p50=..."
        MatchCollection rates = Regex.Matches(output, @"([0-9]+(?:\.[0-9]+)?) requests per second");
        if (process.ExitCode != 0 || rates.Count == 0)
        {
            throw new InvalidOperationException($"redis-benchmark exited {process.ExitCode} without a rate: {await error}{output[^Math.Min(output.Length, 500)..]}");
        }

        string command = $"redis-benchmark --tls -c {clients} -P {pipeline} -n {requests} XADD load:check * p <{payloadBytes} bytes>";
        return (double.Parse(rates[^1].Groups[1].Value, CultureInfo.InvariantCulture), command);
    }

    /// <summary>Stops redis-server and deletes its configuration and append-only file.</summary>
    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        _directory.Dispose();
        _tls.Dispose();
    }

    private static string Config(PeerPki pki, int port, bool fsyncAlways, string directory) => $"""
        # Written by relayd-loadgen for one run; deleted when it ends.
        bind 127.0.0.1
        port 0
        tls-port {port}
        tls-cert-file "{pki.ServerCertPath}"
        tls-key-file "{pki.ServerKeyPath}"
        tls-ca-cert-file "{pki.CaCertPath}"
        tls-auth-clients yes
        appendonly yes
        appendfsync {(fsyncAlways ? "always" : "everysec")}
        dir "{directory}"
        save ""
        daemonize no
        logfile ""

        """;
}
