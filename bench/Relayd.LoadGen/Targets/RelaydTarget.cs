using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Security;

namespace Relayd.LoadGen.Targets;

/// <summary>
/// relayd, driven through the partner client library. Starts its own relay process (<c>relayd dev</c> with a fresh
/// dev PKI) unless given the address of a running relay and its PKI directory.
/// Partners partner-0 … partner-(P-1) each hold the sending connections assigned to them round-robin and one
/// receiving connection; partner p sends to partner (p + 1) mod P. Every connection consumes deliveries.
/// </summary>
public sealed class RelaydTarget : ILoadTarget
{
    private readonly DevPki _pki;
    private readonly string? _address;
    private readonly int _partners;
    private readonly List<RelayClient> _senders = [];
    private readonly List<RelayClient> _receivers = [];
    private readonly List<Task> _consumers = [];
    private readonly CancellationTokenSource _stop = new();
    private ChildProcessGroup? _relay; // relayd dev in a process group that dies with the load generator
    private ByteString[] _users = [];
    private long _messageCounter;
    private readonly long _runPrefix = Random.Shared.NextInt64();
    private readonly bool _sync;
    private readonly bool _optIn;

    // relayd dev --rate-limits: "bench" (every bucket checked, none reached), "off", or "defaults" (which cut its one user per partner).
    private readonly string _rateLimits;

    // More arguments for relayd dev (--relay-arg): the switch an on/off comparison flips, e.g. --no-trace.
    private readonly string[] _extraRelayArgs;

    // The relayd to start: an executable (the NativeAOT publish, as packaged), or null for the JIT'd relayd.dll beside
    // the load generator. The JIT'd one recompiles hot methods during the first seconds (tiered PGO), which shows in tails.
    private readonly string? _relaydExecutable;

    /// <param name="pki">Dev PKI directory (created when the target starts its own relay).</param>
    /// <param name="address">host:port of a running relay, or null to start one.</param>
    /// <param name="partners">Partner count (at least 2).</param>
    /// <param name="relayPid">Pid of a running relay, for RSS/CPU sampling.</param>
    /// <param name="sync">Whether the relay this target starts fdatasyncs its write-ahead log (the durable default).</param>
    /// <param name="optIn">Whether every user is registered with ConsentUpdate before the run and the relay this target starts requires it (relayd's default); false: neither.</param>
    /// <param name="extraRelayArgs">More arguments for the relayd dev this target starts (the load generator's --relay-arg).</param>
    /// <param name="relaydExecutable">The relayd executable to start (the load generator's --relayd), or null for <c>dotnet relayd.dll</c>.</param>
    public RelaydTarget(DevPki pki, string? address, int partners, int? relayPid = null, bool sync = true, string rateLimits = "bench", bool optIn = true, string[]? extraRelayArgs = null, string? relaydExecutable = null)
    {
        _relaydExecutable = relaydExecutable;
        _extraRelayArgs = extraRelayArgs ?? [];
        _sync = sync;
        _rateLimits = rateLimits;
        _optIn = optIn;
        _pki = pki;
        _address = address;
        _partners = Math.Max(2, partners);
        ServerPid = relayPid;
    }

    public string Name => "relayd";

    public string Durability => _address is not null ? "as the running relay is configured ([wal] sync)"
        : _sync ? "durable: acked after write-ahead log group commit with fdatasync"
        : "write-ahead log without fdatasync (--no-sync): survives a relay crash, not a power loss";

    public int? ServerPid { get; private set; }

    public static string PartnerId(int index) => "partner-" + index;

    public async Task StartAsync(Workload workload, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken)
    {
        string address = _address ?? await StartRelayAsync(cancellationToken);
        string[] hostPort = address.Split(':');
        X509Certificate2 ca = X509CertificateLoader.LoadCertificateFromFile(_pki.CaCertPath);
        _users = [.. Enumerable.Range(0, workload.Users).Select(i => ByteString.CopyFromUtf8("user-" + i))];
        for (int p = 0; p < _partners; p++)
        {
            RelayClient receiver = await ConnectAsync(hostPort, ca, PartnerId(p), cancellationToken);
            _receivers.Add(receiver);
            _consumers.Add(Task.Run(() => receiver.ConsumeInPlaceAsync((in DeliveryView d) => Delivered(d, onDelivered), long.MaxValue, _stop.Token), CancellationToken.None));
            _consumers.Add(Task.Run(() => DrainReceiptsAsync(receiver, _stop.Token), CancellationToken.None));
        }

        if (_optIn)
        {
            // Every partner's users opt in (partner p's user-0 sends, the others receive), before anything is measured.
            string[] names = [.. Enumerable.Range(0, workload.Users).Select(i => "user-" + i)];
            foreach (RelayClient receiver in _receivers)
            {
                await OptInAsync(receiver, names, cancellationToken);
            }
        }

        for (int c = 0; c < workload.Connections; c++)
        {
            // Every connection of a partner receives deliveries (the relay spreads shards over them), so every
            // sending connection consumes and acknowledges too.
            RelayClient sender = await ConnectAsync(hostPort, ca, PartnerId(c % _partners), cancellationToken);
            _senders.Add(sender);
            _consumers.Add(Task.Run(() => sender.ConsumeInPlaceAsync((in DeliveryView d) => Delivered(d, onDelivered), long.MaxValue, _stop.Token), CancellationToken.None));
            _consumers.Add(Task.Run(() => DrainReceiptsAsync(sender, _stop.Token), CancellationToken.None));
        }
    }

    // Deliveries are read in place (the partner client library's zero-copy consumer): the generator looks only at the
    // payload's first bytes (its send time, on sampled messages).
    private static void Delivered(in DeliveryView delivery, Action<ReadOnlySpan<byte>> onDelivered)
    {
        ReadOnlySequence<byte> ciphertext = delivery.Ciphertext;
        if (ciphertext.IsSingleSegment || ciphertext.Length < LoadDriver.HeaderBytes)
        {
            onDelivered(ciphertext.FirstSpan);
            return;
        }

        Span<byte> head = stackalloc byte[LoadDriver.HeaderBytes];
        ciphertext.Slice(0, LoadDriver.HeaderBytes).CopyTo(head);
        onDelivered(head);
    }

    public Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload)
    {
        RelayClient sender = _senders[connection];
        int senderPartner = connection % _partners;
        long n = Interlocked.Increment(ref _messageCounter);
        byte[] id = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(id, _runPrefix);
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(id.AsSpan(8), n);
        var envelope = new Envelope
        {
            MessageId = UnsafeByteOperations.UnsafeWrap(id),
            SenderPartner = sender.PartnerId,
            SenderUser = _users[0],
            RecipientPartner = PartnerId((senderPartner + 1) % _partners),
            RecipientUser = _users[recipient],
            ContentKind = ContentKind.Text,
            Ciphertext = UnsafeByteOperations.UnsafeWrap(payload),
        };
        return Translate(sender.SendAsync(envelope, CancellationToken.None));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        foreach (RelayClient client in _senders.Concat(_receivers))
        {
            await client.DisposeAsync();
        }

        try
        {
            await Task.WhenAll(_consumers).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is OperationCanceledException or RelayException or TimeoutException)
        {
            // Stopping.
        }

        if (_relay is not null)
        {
            _relay.KillGroup();
            await _relay.Process.WaitForExitAsync();
            _relay.Dispose();
        }

        _stop.Dispose();
    }

    private static async Task Translate(Task<Ack> send)
    {
        try
        {
            await send;
        }
        catch (RelayException ex)
        {
            throw new LoadRefusedException(ex.Code.ToString(), ex.Detail);
        }
    }

    /// <summary>The relay's address: the running one, or a relay process started now (for runs that bring their own clients).</summary>
    public Task<string> EnsureRelayAsync(CancellationToken cancellationToken) =>
        _address is not null ? Task.FromResult(_address) : StartRelayAsync(cancellationToken);

    private async Task<string> StartRelayAsync(CancellationToken cancellationToken)
    {
        int port = FreePort();
        var start = new ProcessStartInfo(_relaydExecutable ?? "dotnet");
        if (_relaydExecutable is null)
        {
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "relayd.dll"));
        }

        foreach (string argument in (string[])["dev", "--dir", _pki.Directory, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            start.ArgumentList.Add(argument);
        }

        if (!_sync)
        {
            start.ArgumentList.Add("--no-sync");
        }

        if (!_optIn)
        {
            start.ArgumentList.Add("--no-opt-in");
        }

        start.ArgumentList.Add("--rate-limits");
        start.ArgumentList.Add(_rateLimits);
        foreach (string argument in _extraRelayArgs)
        {
            start.ArgumentList.Add(argument);
        }

        for (int p = 0; p < _partners; p++)
        {
            start.ArgumentList.Add("--partner");
            start.ArgumentList.Add(PartnerId(p));
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _relay = ChildProcessGroup.Start(start, line =>
        {
            if (line.Contains("listening on", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        });
        ServerPid = await _relay.ServerPidAsync(cancellationToken);
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        return $"localhost:{port}";
    }

    private Task<RelayClient> ConnectAsync(string[] hostPort, X509Certificate2 ca, string partner, CancellationToken cancellationToken) =>
        ConnectPartnerAsync(_pki, hostPort, ca, partner, "relayd-loadgen", cancellationToken);

    /// <summary>A session of <paramref name="partner"/> (its dev certificate) with the relay at <paramref name="hostPort"/>: host and port.</summary>
    public static Task<RelayClient> ConnectPartnerAsync(DevPki pki, string[] hostPort, X509Certificate2 ca, string partner, string agent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pki);
        ArgumentNullException.ThrowIfNull(hostPort);
        if (!pki.HasPartner(partner))
        {
            throw new InvalidOperationException($"no certificate for {partner} in {pki.Directory}: run 'relayd pki issue-partner --dir {pki.Directory} --id {partner}'");
        }

        return RelayClient.ConnectAsync(
            new RelayClientOptions
            {
                Host = hostPort[0],
                Port = int.Parse(hostPort[1], System.Globalization.CultureInfo.InvariantCulture),
                Tls = new() { ClientCertificate = pki.LoadPartner(partner), RelayRoots = [ca] },
                Agent = agent,
            },
            cancellationToken);
    }

    /// <summary>Grants consent with every partner to <paramref name="users"/> of <paramref name="client"/>'s partner, 1,000 per ConsentUpdate (the relay's default limit).</summary>
    public static async Task OptInAsync(RelayClient client, IReadOnlyList<string> users, CancellationToken cancellationToken)
    {
        for (int start = 0; start < users.Count; start += 1000)
        {
            await client.UpdateConsentAsync(
                users.Skip(start).Take(1000).Select(u => new ConsentChange { User = ByteString.CopyFromUtf8(u), Action = ConsentAction.ConsentGrant }),
                cancellationToken);
        }
    }

    private static async Task DrainReceiptsAsync(RelayClient client, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (Receipt _ in client.ReadReceiptsAsync(cancellationToken))
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or RelayException)
        {
            // Connection closed.
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
