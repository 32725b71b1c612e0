using System.Globalization;
using System.Threading.Channels;
using StackExchange.Redis;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// Redis Streams over mutual TLS on our own redis-server with an append-only file: a send is XADD of field "p" to
/// stream <c>load:&lt;recipient % 16&gt;</c>, complete on Redis's reply; the receiver reads all 16 streams through one
/// consumer group with XREADGROUP and acknowledges with XACK. Whether the reply waits for fsync is the constructor's choice.
/// </summary>
public sealed class RedisStreamsTarget : ILoadTarget, IToolChecked
{
    private const int StreamCount = 16;
    private const int ReadPerStream = 256;
    private const int MaxPipeline = 1024; // XADDs per batch at most: the load generator's default window
    private static readonly RedisValue Group = "loadgen";
    private static readonly RedisValue Consumer = "receiver";
    private static readonly RedisValue PayloadField = "p";
    private static readonly RedisKey[] StreamKeys =
        [.. Enumerable.Range(0, StreamCount).Select(i => (RedisKey)("load:" + i.ToString(CultureInfo.InvariantCulture)))];

    // StackExchange.Redis cannot block (XREADGROUP BLOCK would stall its shared connection), so an empty read waits this long.
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(1);

    private readonly PeerPki _pki;
    private readonly bool _fsyncAlways;
    private readonly CancellationTokenSource _stopping = new();
    private RedisServer? _server;
    private ConnectionMultiplexer? _receiver;
    private ConnectionMultiplexer[] _senders = [];
    private IDatabase[] _databases = [];
    private Channel<PendingAdd>[] _queues = [];
    private Task[] _pumps = [];
    private Task _receiving = Task.CompletedTask;
    private bool _disposed;

    /// <summary>Creates the target; nothing starts before <see cref="StartAsync"/>.</summary>
    /// <param name="pki">The dev PKI for mutual TLS.</param>
    /// <param name="fsyncAlways">
    /// <c>appendfsync always</c> (Redis fsyncs the AOF before replying) instead of <c>appendfsync everysec</c>.
    /// </param>
    public RedisStreamsTarget(PeerPki pki, bool fsyncAlways)
    {
        ArgumentNullException.ThrowIfNull(pki);
        _pki = pki;
        _fsyncAlways = fsyncAlways;
    }

    /// <inheritdoc />
    public string Name => _fsyncAlways ? "redis-streams-always" : "redis-streams-everysec";

    /// <inheritdoc />
    public string Durability => _fsyncAlways ? "AOF appendfsync always (fsync before reply)" : "AOF appendfsync everysec";

    /// <inheritdoc />
    public int? ServerPid => _server?.Pid;

    /// <inheritdoc />
    public async Task StartAsync(Workload workload, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workload);
        ArgumentNullException.ThrowIfNull(onDelivered);
        try
        {
            _server = await RedisServer.StartAsync(_pki, _fsyncAlways, cancellationToken);

            _receiver = await _server.ConnectAsync("loadgen-receiver");
            IDatabase receiving = _receiver.GetDatabase();
            foreach (RedisKey key in StreamKeys)
            {
                await receiving.StreamCreateConsumerGroupAsync(key, Group, StreamPosition.Beginning, createStream: true);
            }

            _receiving = ReceiveLoop.Start(Name, stopping => DeliverAsync(receiving, onDelivered, stopping), _stopping.Token);

            _senders = new ConnectionMultiplexer[workload.Connections];
            _databases = new IDatabase[workload.Connections];
            for (int i = 0; i < _senders.Length; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                _senders[i] = await _server.ConnectAsync($"loadgen-sender-{i}");
                _databases[i] = _senders[i].GetDatabase();
            }

            _queues = [.. _senders.Select(_ => Channel.CreateUnbounded<PendingAdd>(new UnboundedChannelOptions { SingleReader = true }))];
            _pumps = [.. Enumerable.Range(0, _senders.Length).Select(c => Task.Run(() => PumpAsync(_databases[c], _queues[c].Reader)))];
        }
        catch
        {
            // Whoever called may not dispose a target that failed to start; its server must not outlive it.
            await DisposeAsync();
            throw;
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// Completes on XADD's reply; a Redis error reply (e.g. OOM, MISCONF) is a <see cref="LoadRefusedException"/>.
    /// The XADDs of one connection go out as pipelined batches of whatever is waiting (up to the window), as a Redis
    /// user pipelines them and as redis-benchmark -P does; one command per write left Redis one fsync per few commands.
    /// </remarks>
    public Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queues[connection].Writer.TryWrite(new PendingAdd(StreamKeys[recipient % StreamCount], payload, done)))
        {
            done.SetException(new LoadRefusedException("STOPPED", "the Redis target is stopping"));
        }

        return done.Task;
    }

    private static async Task PumpAsync(IDatabase database, ChannelReader<PendingAdd> queue)
    {
        while (await queue.WaitToReadAsync())
        {
            IBatch batch = database.CreateBatch();
            for (int n = 0; n < MaxPipeline && queue.TryRead(out PendingAdd add); n++)
            {
                _ = batch.StreamAddAsync(add.Stream, PayloadField, add.Payload).ContinueWith(
                    static (sent, state) => Complete(sent, (TaskCompletionSource)state!), add.Done, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            batch.Execute();
        }
    }

    private static void Complete(Task<RedisValue> sent, TaskCompletionSource done)
    {
        if (sent.IsCompletedSuccessfully)
        {
            done.TrySetResult();
        }
        else if (sent.Exception?.InnerException is RedisServerException e)
        {
            // Redis error replies start with their code word: "OOM command not allowed ...", "MISCONF ...".
            done.TrySetException(new LoadRefusedException(e.Message.Split(' ', 2)[0], $"Redis refused XADD: {e.Message}"));
        }
        else
        {
            done.TrySetException(sent.Exception?.InnerException ?? new TaskCanceledException());
        }
    }

    private readonly record struct PendingAdd(RedisKey Stream, ReadOnlyMemory<byte> Payload, TaskCompletionSource Done);

    /// <inheritdoc />
    /// <remarks>redis-benchmark with the harness's connections and window as clients and pipeline depth, the same 1 KiB (or whatever) payload, about 3 s of requests at the harness's rate.</remarks>
    public async Task<ToolCheck?> CheckAsync(Workload workload, double harnessPerSecond, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(workload);
        if (_server is null)
        {
            return null;
        }

        int requests = (int)Math.Clamp(harnessPerSecond * 3, 20_000, 1_000_000);
        int pipeline = workload.OpenLoop ? 1 : Math.Min(workload.Window, MaxPipeline);
        (double PerSecond, string Command)? tool = await _server.RunRedisBenchmarkAsync(_senders.Length, pipeline, requests, workload.MessageBytes, cancellationToken);
        return tool is { } t ? new ToolCheck("redis-benchmark", t.Command, t.PerSecond, harnessPerSecond) : null;
    }

    /// <summary>Closes the connections, stops redis-server and deletes its directory with the append-only file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (Channel<PendingAdd> queue in _queues)
        {
            queue.Writer.TryComplete();
        }

        await Task.WhenAll(_pumps);
        await _stopping.CancelAsync();
        await _receiving;
        await AsyncDisposables.DisposeAllAsync([.. _senders, _receiver, _server]);

        _stopping.Dispose();
    }

    private static async Task DeliverAsync(IDatabase database, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken stopping)
    {
        StreamPosition[] unread = [.. StreamKeys.Select(key => new StreamPosition(key, StreamPosition.NewMessages))];
        Task previousAcks = Task.CompletedTask;
        var acks = new List<Task>(StreamCount);
        while (!stopping.IsCancellationRequested)
        {
            RedisStream[] streams = await database.StreamReadGroupAsync(unread, Group, Consumer, ReadPerStream);
            // The previous batch's XACKs went out ahead of this read on the same connection; collect their replies now.
            await previousAcks;
            acks.Clear();
            foreach (RedisStream stream in streams)
            {
                if (stream.Entries.Length == 0)
                {
                    continue;
                }

                var ids = new RedisValue[stream.Entries.Length];
                for (int i = 0; i < ids.Length; i++)
                {
                    StreamEntry entry = stream.Entries[i];
                    ids[i] = entry.Id;
                    onDelivered(((ReadOnlyMemory<byte>)entry[PayloadField]).Span);
                }

                acks.Add(database.StreamAcknowledgeAsync(stream.Key, Group, ids));
            }

            previousAcks = Task.WhenAll(acks);
            if (acks.Count == 0)
            {
                await Task.Delay(IdlePoll, stopping);
            }
        }

        await previousAcks;
    }
}
