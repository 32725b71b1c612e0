using System.Buffers;
using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Relayd.Admission;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Storage.WalStore;

namespace Relayd.Benchmarks;

/// <summary>
/// The relay's per-message hot path without sockets: frame read (varint + limit + slice), envelope header read,
/// route (checks, dedup, write-ahead log append with real group commit and fdatasync on the log writer thread, shard
/// append = the one ciphertext copy into memory) and the recipient side (take range, acknowledge, settle in the log).
/// Each operation is one envelope; a batch of 64 frames is read from one buffer, as from one socket read.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks : IDeliveryConsumer, IDisposable
{
    private string _walDirectory = "";
    private WalEnvelopeStore _store = null!;
    private int _invocations;

    private const int Batch = 64;
    private readonly List<SettledEnvelope> _receipts = [];
    private byte[] _wire = [];
    private int[] _messageIdOffsets = [];
    private EnvelopeRouter _router = null!;
    private PartnerInfo _alpha = null!;
    private ShardQueue[] _betaShards = [];
    private PartnerInfo _beta = null!;
    private InteropPolicy _interop = InteropPolicy.None;
    private ulong _counter;

    [Params(1024, 64 * 1024)]
    public int CiphertextBytes { get; set; }

    /// <summary>
    /// fdatasync per group commit (true), or pwrite only (false): the log writer thread then never holds the route
    /// step back, so the figure is the CPU cost of the path itself.
    /// </summary>
    [Params(true, false)]
    public bool Sync { get; set; }

    /// <summary>The rate limiter in the route step (every bucket checked, at rates the benchmark cannot reach), or none.</summary>
    [Params(false, true)]
    public bool RateLimits { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        options.Partners.Add(new PartnerOptions { Id = "beta" });
        options.Limits.ShardCount = 2;
        options.Limits.DedupCapacityPerPartner = 65_536; // full from the start (below): every route step evicts, the steady state

        // Before the partners are made: each partner's limits are resolved from these when its settings are built.
        options.Interop.UseBenchmarkRates();
        var directory = new PartnerDirectory(options);
        _walDirectory = Directory.CreateTempSubdirectory("relayd-bench-wal-").FullName;
        _store = WalEnvelopeStore.Open(new StorageOptions { Directory = _walDirectory, ReserveBytes = 0, Sync = Sync }, NullLogger.Instance);
        var limits = new Relayd.Interop.RateLimits.RateLimiter(options.Interop, TimeProvider.System);
        _interop = CreateInterop(RateLimits ? limits : NoRateLimits.Instance);
        _router = new EnvelopeRouter(directory, _store, options.Limits, TimeProvider.System, _interop);
        _alpha = directory.Find("alpha")!;
        _beta = directory.Find("beta")!;

        // Fill alpha's dedup index to its capacity now: a 64 KiB run's warm-up sends fewer ids than that, and an index
        // still filling takes a ring chunk per 4,096 ids (40 B per message), which is growth, not the steady state.
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < options.Limits.DedupCapacityPerPartner; i++)
        {
            _alpha.Idempotency.Record(new UInt128(ulong.MaxValue, (ulong)i), now);
        }

        _betaShards = _beta.Mailbox.Shards;
        foreach (ShardQueue shard in _betaShards)
        {
            shard.SetOwner(this);
        }

        using var stream = new MemoryStream();
        var offsets = new List<int>();
        byte[] ciphertext = new byte[CiphertextBytes];
        Random.Shared.NextBytes(ciphertext);
        for (int i = 0; i < Batch; i++)
        {
            Frame frame = BenchFrames.AliceToBeta(i, ciphertext);
            long start = stream.Position;
            frame.WriteDelimitedTo(stream);
            byte[] written = stream.ToArray().AsSpan((int)start).ToArray();
            var body = new ReadOnlySequence<byte>(written);
            FrameReader.TryReadFrame(ref body, int.MaxValue, out ReadOnlySequence<byte> frameBody);
            EnvelopeHeader.TryRead(frameBody, out EnvelopeHeader header);
            int prefix = written.Length - (int)frameBody.Length;
            offsets.Add((int)start + prefix + (int)header.MessageIdSlice.Offset);
        }

        _wire = stream.ToArray();
        _messageIdOffsets = [.. offsets];
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public long ReadFrameAndHeader()
    {
        var buffer = new ReadOnlySequence<byte>(_wire);
        long total = 0;
        while (FrameReader.TryReadFrame(ref buffer, 1024 * 1024, out ReadOnlySequence<byte> frame))
        {
            EnvelopeHeader.TryRead(frame, out EnvelopeHeader header);
            total += header.Ciphertext.Length;
        }

        return total;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int ReadRouteDeliverAcknowledge()
    {
        // Fresh message ids, so that dedup does not short-circuit the route.
        foreach (int offset in _messageIdOffsets)
        {
            BinaryPrimitives.WriteUInt64BigEndian(_wire.AsSpan(offset), ++_counter);
        }

        var buffer = new ReadOnlySequence<byte>(_wire);
        int accepted = 0;
        while (FrameReader.TryReadFrame(ref buffer, 1024 * 1024, out ReadOnlySequence<byte> frame))
        {
            EnvelopeHeader.TryRead(frame, out EnvelopeHeader header);
            RouteOutcome outcome;
            while ((outcome = _router.Route(_alpha, frame, header)).LogBusy)
            {
                _store.WaitForSpaceAsync(CancellationToken.None).AsTask().Wait(); // the log writer is a batch behind
            }

            // A refused envelope would make this a benchmark of the refusal path: the figures would be wrong.
            accepted += outcome.Accepted ? 1 : throw new InvalidOperationException($"the benchmark's envelope was refused: {outcome.Refusal} ({outcome.Detail})");
        }

        // The recipient's session: take what is queued (what it would write to TLS), then acknowledge all of it.
        foreach (ShardQueue shard in _betaShards)
        {
            while (shard.TryTakeRange(this, 0, _interop.Consent, _beta, _receipts, out DeliveryRange range))
            {
                shard.CompleteWrite(range);
            }
        }

        AcknowledgeAll();
        return accepted;
    }

    private void AcknowledgeAll()
    {
        // Delivery ids are (shard << 48) | sequence; the shard knows its head, so acking from 1 up is cheap.
        for (int s = 0; s < _betaShards.Length; s++)
        {
            ShardQueue shard = _betaShards[s];
            while (shard.Count > 0)
            {
                ulong sequence = _acked[s] + 1;
                if (shard.Acknowledge(((ulong)s << 48) | sequence, _receipts) == AckResult.UnknownDelivery)
                {
                    break;
                }

                _acked[s] = sequence;
            }
        }

        _store.Settle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_receipts));
        _receipts.Clear();
        if (++_invocations % 256 == 0)
        {
            _store.Log.DeleteSegmentsBefore(_store.Log.DurablePosition.Segment); // retention: everything is settled
        }
    }

    /// <summary>The interop rules the router and the recipient's take step use; none here (see <see cref="OptInHotPathBenchmarks"/>).</summary>
    private protected virtual InteropPolicy CreateInterop(IRateLimiter rateLimits) => new(NoConsentRequired.Instance, rateLimits);

    /// <summary>Recipient users of the batch: user-0 … user-63 (the sender is alice).</summary>
    private protected const int RecipientUsers = Batch;

    [GlobalCleanup]
    public void Dispose()
    {
        _store.Dispose();
        Directory.Delete(_walDirectory, recursive: true);
        GC.SuppressFinalize(this);
    }

    private readonly ulong[] _acked = new ulong[2];

    void IDeliveryConsumer.OnDeliveriesAvailable()
    {
    }
}
