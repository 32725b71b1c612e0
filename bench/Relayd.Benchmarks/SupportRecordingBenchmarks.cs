using System.Buffers;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Support.Evidence;
using Relayd.Support.Trace;

namespace Relayd.Benchmarks;

/// <summary>
/// What the shared-support features cost per message, apart from everything else (issue 14: trace and evidence each
/// within 5% of relay CPU per message): one message's whole life as the data path reports it (accepted with its 1 KiB
/// ciphertext and two user ids, durable (one event per 64 Acks), delivered, acknowledged, receipt produced) into the real trace recorder or
/// evidence recorder, then their writers' work on it (encoding, hashing, the Merkle tree, real files under a temp
/// directory) run on the benchmark's own thread instead of the writer thread: the time per message is the data path's
/// calls plus the writer's work, i.e. the CPU the relay spends on them, without the wake-ups and hand-offs of a second
/// thread (two threads on two cores would overlap and show only the longer of the two). Evidence's signing of tree
/// heads runs on its timer, not here: one Ed25519 signature per sign_interval_ms, nothing per message.
/// </summary>
[MemoryDiagnoser]
public class SupportRecordingBenchmarks : IDisposable
{
    private const int Messages = 1024;

    // A session's writer sends the Acks one group commit made durable in one go, and reports them as one event: at
    // the standard load a commit holds ~130-160 envelopes over 2 sessions. 64 is on the cautious side.
    private const int AcksPerBatch = 64;

    private readonly byte[] _frame = new byte[1024 + 64];
    private string _directory = "";
    private PartnerInfo _alpha = null!;
    private PartnerInfo _beta = null!;
    private TraceRecorder? _trace;
    private EvidenceStore? _evidence;
    private ISupportEvents _events = null!;
    private ulong _next;

    public enum Feature
    {
        Trace,
        Evidence,
    }

    [Params(Feature.Trace, Feature.Evidence)]
    public Feature Consumer { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        options.Partners.Add(new PartnerOptions { Id = "beta" });
        var directory = new PartnerDirectory(options);
        _alpha = directory.Find("alpha")!;
        _beta = directory.Find("beta")!;
        Random.Shared.NextBytes(_frame);
        _directory = Directory.CreateTempSubdirectory("relayd-bench-support-").FullName;
        if (Consumer == Feature.Trace)
        {
            _trace = TraceRecorder.Open(new TraceOptions(), _directory, TimeProvider.System, NullLogger.Instance, startWriter: false);
            _events = _trace;
        }
        else
        {
            EvidenceKey key = EvidenceKey.CreateFile(Path.Combine(_directory, "evidence.key"));
            _evidence = EvidenceStore.Open(new EvidenceOptions { KeyPath = "evidence.key" }, Path.Combine(_directory, "evidence"), "relayd-bench", key, TimeProvider.System, NullLogger.Instance);
            _events = _evidence.Recorder;
        }
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public void MessageLife()
    {
        var frame = new ReadOnlySequence<byte>(_frame);
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (int i = 0; i < Messages; i++)
        {
            UInt128 id = new(0x5eed, ++_next);
            _events.EnvelopeAccepted(new AcceptedEnvelope
            {
                Sender = _alpha,
                ConnectionId = 1,
                MessageId = id,
                Recipient = _beta,
                SenderUser = frame.Slice(8, 16),
                RecipientUser = frame.Slice(32, 16),
                Ciphertext = frame.Slice(64, 1024),
                FrameBytes = _frame.Length,
                Shard = 3,
                LogOnly = false,
                AcceptedAtMs = now,
                DurableAt = new DurableMark(_next * 1200),
            });
            if (i % AcksPerBatch == AcksPerBatch - 1)
            {
                _events.EnvelopesDurable(_alpha, 1, new DurableMark((_next - AcksPerBatch + 1) * 1200), new DurableMark(_next * 1200), AcksPerBatch, now);
            }

            _events.EnvelopeDelivered(_alpha, id, _beta, 2, _next, now);
            _events.EnvelopeAcknowledged(_alpha, id, _beta, 2, _next, now, now, now);
            _events.ReceiptProduced(_alpha, id, ReceiptStatus.Delivered, ErrorCode.Unspecified, 1, now);
        }

        // The writer's share, on this thread.
        if (_trace is not null)
        {
            _trace.DrainNow();
        }
        else
        {
            _evidence!.DrainNow();
        }
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _trace?.Dispose();
        _evidence?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        if (_directory.Length > 0)
        {
            Directory.Delete(_directory, recursive: true);
        }

        GC.SuppressFinalize(this);
    }
}
