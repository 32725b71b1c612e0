using System.Buffers;
using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Storage.WalStore;

namespace Relayd.Benchmarks;

/// <summary>
/// A relay's start after a crash: the write-ahead log opened and replayed into fresh partners' dedup indexes and shard
/// queues (<see cref="QueueRecovery"/>, as <c>Relay.Open</c> does). The setup builds a real log of
/// <see cref="LogMiB"/> of 1 KiB envelopes from alpha to beta over 64 users, settles all but
/// <see cref="UnsettledPercent"/> of them (as their deliveries would have), and closes it; each operation is one whole
/// recovery of it. Replay speed is the log's size over the mean (bench/README.md, "Recovery").
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5, invocationCount: 1)]
public class RecoveryBenchmarks
{
    private const int CiphertextBytes = 1024;
    private string _directory = "";
    private RelayOptions _options = null!;
    private PartnerDirectory _partners = null!;

    /// <summary>The log's size.</summary>
    [Params(1024)]
    public int LogMiB { get; set; }

    /// <summary>Envelopes still waiting for beta at the crash: 1% (a relay under load) or all (beta was offline).</summary>
    [Params(1, 100)]
    public int UnsettledPercent { get; set; }

    /// <summary>
    /// Whether the page cache is dropped before each recovery (as after a power loss or reboot: every read goes to
    /// the disk) or keeps the log (as after <c>kill -9</c>). Dropping it needs root; without root the cold case fails.
    /// </summary>
    [Params(false, true)]
    public bool ColdCache { get; set; }

    /// <summary>Envelopes the built log holds.</summary>
    public long Envelopes { get; private set; }

    [GlobalSetup]
    public void Setup()
    {
        _options = new RelayOptions();
        _options.Partners.Add(new PartnerOptions { Id = "alpha" });
        _options.Partners.Add(new PartnerOptions { Id = "beta" });
        _directory = Directory.CreateTempSubdirectory("relayd-recovery-bench-").FullName;
        Envelopes = Build().GetAwaiter().GetResult();
        using (var sync = System.Diagnostics.Process.Start("sync"))
        {
            sync.WaitForExit(); // written back, so that a dropped page cache really reads the disk
        }

        Console.WriteLine($"// built {Envelopes} envelopes, {LogBytes() / (1024.0 * 1024):F0} MiB of log in {_directory}");
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_directory, recursive: true);

    [IterationSetup]
    public void FreshPartners()
    {
        _partners = new PartnerDirectory(_options);
        if (ColdCache)
        {
            File.WriteAllText("/proc/sys/vm/drop_caches", "1"); // the log is closed and written back: clean pages only
        }
    }

    [Benchmark]
    public int OpenAndReplay()
    {
        using WalEnvelopeStore store = WalEnvelopeStore.Open(StorageOptions(), NullLogger.Instance);
        var recovery = new QueueRecovery(_partners, store, NullLogger.Instance);
        recovery.Run(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        return _partners.Find("beta")!.Mailbox.Shards.Length;
    }

    private StorageOptions StorageOptions() => new() { Directory = _directory, ReserveBytes = 0, Sync = false };

    private long LogBytes() => new DirectoryInfo(_directory).EnumerateFiles("wal-*.log").Sum(f => f.Length);

    private async Task<long> Build()
    {
        using WalEnvelopeStore store = WalEnvelopeStore.Open(StorageOptions(), NullLogger.Instance);
        byte[][] frames = Frames(out int messageIdOffset);
        long target = (long)LogMiB * 1024 * 1024;
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        long expires = now + (long)TimeSpan.FromDays(7).TotalMilliseconds;
        var toSettle = new List<StoreRef>(1024);
        long count = 0;
        long bytes = 0;
        while (bytes < target)
        {
            byte[] frame = frames[count % frames.Length];
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(messageIdOffset + 8), (ulong)count + 1); // unique ids
            StoreRef reference;
            while (store.TryAppend(new ReadOnlySequence<byte>(frame), now, expires, out reference, out _) == AppendResult.Busy)
            {
                await store.WaitForSpaceAsync(CancellationToken.None);
            }

            if (count % 100 >= UnsettledPercent)
            {
                toSettle.Add(reference);
            }

            if (toSettle.Count == toSettle.Capacity)
            {
                store.Settle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(toSettle));
                toSettle.Clear();
            }

            count++;
            bytes += frame.Length + 32;
        }

        store.Settle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(toSettle));
        store.FlushSettled();
        return count;
    }

    private static byte[][] Frames(out int messageIdOffset)
    {
        byte[] ciphertext = new byte[CiphertextBytes];
        Random.Shared.NextBytes(ciphertext);
        var frames = new byte[64][];
        messageIdOffset = 0;
        for (int i = 0; i < frames.Length; i++)
        {
            Frame frame = BenchFrames.AliceToBeta(i, ciphertext);
            frames[i] = frame.ToByteArray();
            EnvelopeHeader.TryRead(new ReadOnlySequence<byte>(frames[i]), out EnvelopeHeader header);
            messageIdOffset = (int)header.MessageIdSlice.Offset;
        }

        return frames;
    }
}
