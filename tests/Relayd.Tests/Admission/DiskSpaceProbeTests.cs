using System.Buffers;
using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage.WalStore;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Admission;

/// <summary>
/// The disk-space probe (statvfs) that a segment change triggers does not run while the route step holds the
/// sender's dedup lock (nor the shard lock inside it): every envelope of that partner would wait for the syscall.
/// </summary>
public sealed class DiskSpaceProbeTests : IDisposable
{
    private readonly TempWalDirectory _wal = new();

    public void Dispose() => _wal.Dispose();

    [Fact]
    public async Task The_probe_a_new_segment_triggers_runs_after_the_route_step_has_released_the_senders_dedup_lock()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        options.Partners.Add(new PartnerOptions { Id = "beta" });
        var partners = new PartnerDirectory(options);
        PartnerInfo alpha = partners.Find("alpha")!;
        var logger = new LockWatchingLogger(alpha.Idempotency.SyncRoot);

        // A reserve larger than any test disk: the first probe finds the store full, and logs so (event 703).
        using WalEnvelopeStore store = WalEnvelopeStore.Open(
            new StorageOptions { Directory = _wal.Path, SegmentBytes = 1024 * 1024, ReserveBytes = 1L << 40, Sync = false }, logger);
        var router = new EnvelopeRouter(partners, store, options.Limits, TimeProvider.System);

        for (int i = 0; i < 4096 && !store.IsFull; i++)
        {
            byte[] frame = new Frame { Envelope = NewEnvelope(i) }.ToByteArray();
            while (Route(router, alpha, frame).LogBusy)
            {
                await store.WaitForSpaceAsync(TestContext.Current.CancellationToken);
            }
        }

        Assert.True(store.IsFull, "no probe ran within 4096 envelopes of 1 KiB (4 segments of 1 MiB)");
        Assert.Equal(1, logger.StorageFullEvents);
        Assert.Equal(0, logger.StorageFullEventsUnderDedupLock);
    }

    private static RouteOutcome Route(EnvelopeRouter router, PartnerInfo sender, byte[] frame)
    {
        var wire = new ReadOnlySequence<byte>(frame);
        Assert.True(EnvelopeHeader.TryRead(wire, out EnvelopeHeader header));
        return router.Route(sender, wire, header);
    }

    private static Envelope NewEnvelope(int i)
    {
        byte[] id = new byte[16];
        BitConverter.TryWriteBytes(id, i);
        return new Envelope
        {
            MessageId = ByteString.CopyFrom(id),
            SenderPartner = "alpha",
            RecipientPartner = "beta",
            RecipientUser = ByteString.CopyFromUtf8("user-" + (i % 8)),
            ContentKind = ContentKind.Text,
            Ciphertext = ByteString.CopyFrom(new byte[1024]),
        };
    }

    /// <summary>Counts STORAGE_FULL log events, and those logged on a thread that holds the watched lock.</summary>
    private sealed class LockWatchingLogger(object watchedLock) : ILogger
    {
        private int _storageFull;
        private int _underLock;

        public int StorageFullEvents => Volatile.Read(ref _storageFull);

        public int StorageFullEventsUnderDedupLock => Volatile.Read(ref _underLock);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == 703)
            {
                Interlocked.Increment(ref _storageFull);
                if (Monitor.IsEntered(watchedLock))
                {
                    Interlocked.Increment(ref _underLock);
                }
            }
        }
    }
}
