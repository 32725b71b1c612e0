using System.Buffers;
using Google.Protobuf;
using Relayd.Protocol.V1;
using Relayd.Storage;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Storage;

/// <summary>
/// What every envelope store must do (<see cref="IEnvelopeStore"/>), against real files: appends become durable and
/// say so; what is settled stays settled across a restart; recovery hands back every unsettled envelope in append
/// order, bytes intact, with expired and held ones marked; backlog reads resume in order; message ids outlive
/// their envelopes; a store short of space says so and refuses. A store implementation subclasses this with its
/// factory (<see cref="WalEnvelopeStoreContractTests"/> for the write-ahead log).
/// </summary>
public abstract class EnvelopeStoreContract : IDisposable
{
    private const long Future = long.MaxValue;
    private readonly List<IEnvelopeStore> _open = [];
    private readonly string _directory = Directory.CreateTempSubdirectory("relayd-store-contract-").FullName;

    /// <summary>Opens the store kept in <paramref name="directory"/> (new, or as a restarted relay finds it).</summary>
    /// <param name="reserveBytes">Free space the store keeps on its filesystem; below it, <see cref="IEnvelopeStore.IsFull"/>.</param>
    private protected abstract IEnvelopeStore Open(string directory, long reserveBytes);

    /// <summary>Whether the store has given back the space of the (settled) envelope <paramref name="reference"/>.</summary>
    private protected abstract bool HasReclaimed(IEnvelopeStore store, StoreRef reference);

    public void Dispose()
    {
        foreach (IEnvelopeStore store in _open)
        {
            store.Dispose();
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A tmpfs mount point still busy; the temp directory goes with the machine.
        }

        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task An_appended_envelope_becomes_durable_and_the_listener_is_told()
    {
        IEnvelopeStore store = OpenStore();
        var listener = new DurabilityListener();
        store.NotifyWhenDurable(listener);

        (StoreRef reference, DurableMark mark) = await AppendAsync(store, Frame(1), acceptedAtMs: 10, expiresAtMs: Future);

        Assert.False(reference.IsNone);
        await listener.Told.Task.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        await WaitDurableAsync(store, mark);
        Assert.True(store.Durable.Covers(mark));
        Assert.Null(store.Failure);
    }

    [Fact]
    public async Task A_settled_envelope_is_not_recovered_after_a_restart()
    {
        IEnvelopeStore store = OpenStore();
        var appended = new List<StoreRef>();
        for (int i = 0; i < 3; i++)
        {
            appended.Add((await AppendAsync(store, Frame(i), 10, Future)).Reference);
        }

        store.Settle([appended[1]]);
        RecordingSink recovered = Recover(Reopen(store));

        Assert.Equal([appended[0], appended[2]], recovered.Of(StoredFateKind.Unsettled).Select(e => e.Ref));
        Assert.Equal([appended[1]], recovered.Of(StoredFateKind.Settled).Select(e => e.Ref));
    }

    [Fact]
    public async Task Recovery_hands_back_every_unsettled_envelope_in_append_order_with_its_bytes_and_times()
    {
        IEnvelopeStore store = OpenStore();
        var appended = new List<(StoreRef Reference, byte[] Frame, long AcceptedAtMs, long ExpiresAtMs)>();
        for (int i = 0; i < 60; i++)
        {
            byte[] frame = Frame(i, ciphertextBytes: 1 + (i * 997 % 20_000), recipientUser: $"user-{i % 4}");
            (StoreRef reference, _) = await AppendAsync(store, frame, 1_000 + i, 5_000_000 + i);
            appended.Add((reference, frame, 1_000 + i, 5_000_000 + i));
        }

        RecordingSink recovered = Recover(Reopen(store), nowMs: 2_000);

        Recovered[] unsettled = [.. recovered.Of(StoredFateKind.Unsettled)];
        Assert.Equal(appended.Count, unsettled.Length);
        for (int i = 0; i < appended.Count; i++)
        {
            Assert.Equal(appended[i].Reference, unsettled[i].Ref);
            Assert.Equal(appended[i].Frame, unsettled[i].Frame);
            Assert.Equal(appended[i].AcceptedAtMs, unsettled[i].AcceptedAtMs);
            Assert.Equal(appended[i].ExpiresAtMs, unsettled[i].ExpiresAtMs);
        }
    }

    [Fact]
    public async Task A_backlog_read_returns_the_envelopes_from_its_cursor_in_order_and_resumes_where_it_stopped()
    {
        IEnvelopeStore store = OpenStore();
        var appended = new List<(StoreRef Reference, byte[] Frame)>();
        DurableMark last = default;
        for (int i = 0; i < 20; i++)
        {
            byte[] frame = Frame(i);
            (StoreRef reference, last) = await AppendAsync(store, frame, 10, Future);
            appended.Add((reference, frame));
        }

        await WaitDurableAsync(store, last); // a backlog read sees what is durable
        var firstRead = new BacklogCollector(stopAfter: 3);
        store.ReadBacklog(appended[5].Reference, firstRead);
        var rest = new BacklogCollector(stopAfter: int.MaxValue);
        store.ReadBacklog(firstRead.Read[^1].Next, rest);

        Assert.Equal(appended.Skip(5).Take(3).Select(a => a.Reference), firstRead.Read.Select(e => e.Ref));
        Assert.Equal(appended.Skip(8).Select(a => a.Reference), rest.Read.Select(e => e.Ref));
        Assert.Equal(appended.Skip(8).Select(a => a.Frame), rest.Read.Select(e => e.Frame));

        // After a restart, a read passes over what was settled before it.
        store.Settle([appended[9].Reference]);
        store = Reopen(store);
        Recover(store);
        var afterRestart = new BacklogCollector(stopAfter: int.MaxValue);
        store.ReadBacklog(appended[8].Reference, afterRestart);
        Assert.Equal(appended.Skip(8).Where((_, i) => i != 1).Select(a => a.Reference), afterRestart.Read.Select(e => e.Ref));
    }

    [Fact]
    public async Task An_envelope_whose_expiry_passed_is_reported_expired_on_recovery_and_left_out_of_backlogs()
    {
        IEnvelopeStore store = OpenStore();
        StoreRef expiring = (await AppendAsync(store, Frame(1), acceptedAtMs: 10, expiresAtMs: 1_000)).Reference;
        StoreRef lasting = (await AppendAsync(store, Frame(2), acceptedAtMs: 10, expiresAtMs: Future)).Reference;

        store = Reopen(store);
        RecordingSink recovered = Recover(store, nowMs: 1_000);

        Assert.Equal([expiring], recovered.Of(StoredFateKind.Expired).Select(e => e.Ref));
        Assert.Equal([lasting], recovered.Of(StoredFateKind.Unsettled).Select(e => e.Ref));
        var backlog = new BacklogCollector(stopAfter: int.MaxValue);
        store.ReadBacklog(expiring, backlog);
        Assert.Equal([lasting], backlog.Read.Select(e => e.Ref));
    }

    [Fact]
    public async Task An_accepted_message_id_is_still_known_after_a_restart_when_its_envelope_s_space_was_reclaimed()
    {
        IEnvelopeStore store = OpenStore();
        var dedup = new Dedup();
        var appended = new List<(StoreRef Reference, UInt128 Id)>();
        DurableMark last = default;
        for (int i = 0; i < 200; i++)
        {
            byte[] frame = Frame(i, ciphertextBytes: 16 * 1024);
            (StoreRef reference, last) = await AppendAsync(store, frame, acceptedAtMs: Now() - 1_000, Future);
            dedup.Alpha.Record(IdOf(i), Now() - 1_000); // as the route step does
            appended.Add((reference, IdOf(i)));
        }

        await WaitDurableAsync(store, last);
        store.Settle([.. appended.Select(a => a.Reference)]);
        await PollAsync(() =>
        {
            store.RunRetention(dedup, Now());
            return HasReclaimed(store, appended[0].Reference);
        });

        var restarted = new Dedup();
        Recover(Reopen(store), restarted, Now());

        Assert.All(appended, a => Assert.True(restarted.Alpha.TryGet(a.Id, Now(), out _), $"message id {a.Id} forgotten"));
    }

    [Fact]
    public async Task Held_receipts_are_handed_back_after_a_restart_until_they_are_settled()
    {
        IEnvelopeStore store = OpenStore();
        StoreRef delivered = (await AppendAsync(store, Frame(1), 10, Future)).Reference;
        StoreRef expired = (await AppendAsync(store, Frame(2), 10, Future)).Reference;
        store.SettleHeld([new HeldReceiptEntry(delivered, ReceiptStatus.Delivered, ErrorCode.Unspecified), new HeldReceiptEntry(expired, ReceiptStatus.ExpiredUndelivered, ErrorCode.Expired)]);

        store = Reopen(store);
        RecordingSink first = Recover(store);
        store.Settle([delivered]); // a session of the sender took that receipt
        RecordingSink second = Recover(Reopen(store));

        Assert.Equal(
            [(delivered, ReceiptStatus.Delivered, ErrorCode.Unspecified), (expired, ReceiptStatus.ExpiredUndelivered, ErrorCode.Expired)],
            first.Of(StoredFateKind.Held).Select(e => (e.Ref, e.Fate.Status, e.Fate.Code)));
        Assert.Empty(first.Of(StoredFateKind.Unsettled));
        Assert.Equal([expired], second.Of(StoredFateKind.Held).Select(e => e.Ref));
        Assert.Equal([delivered], second.Of(StoredFateKind.Settled).Select(e => e.Ref));
    }

    [Fact]
    public void Below_its_reserve_the_store_reports_itself_full()
    {
        long available = new DriveInfo(_directory).AvailableFreeSpace;
        Assert.SkipWhen(available >= (1L << 40) - (1L << 30), "more than 1 TiB free: the largest reserve cannot exceed it");
        IEnvelopeStore store = Open(_directory, reserveBytes: Math.Min(1L << 40, available + (1L << 30)));
        _open.Add(store);

        store.CheckSpace();

        Assert.True(store.IsFull);
    }

    [Fact]
    public async Task On_a_full_disk_an_append_is_refused_as_Full_and_what_was_stored_before_survives()
    {
        Assert.SkipUnless(TmpfsMount.RunningAsRoot, "needs root to mount a small tmpfs");
        (TmpfsMount? mount, string failure) = await TmpfsMount.TryMountAsync(3);
        Assert.SkipWhen(mount is null, failure);
        await using (mount)
        {
            string directory = Path.Combine(mount!.Directory, "store");
            IEnvelopeStore store = Open(directory, reserveBytes: 0);
            var stored = new List<StoreRef>();
            AppendResult result = AppendResult.Appended;
            DurableMark last = default;
            for (int i = 0; i < 10_000 && result == AppendResult.Appended; i++)
            {
                StoreRef reference;
                DurableMark mark;
                while ((result = store.TryAppend(Sequence(Frame(i, ciphertextBytes: 4096)), 10, Future, out reference, out mark)) == AppendResult.Busy)
                {
                    await store.WaitForSpaceAsync(TestContext.Current.CancellationToken);
                }

                if (result == AppendResult.Appended)
                {
                    stored.Add(reference);
                    last = mark;
                }
            }

            Assert.Equal(AppendResult.Full, result);
            Assert.True(store.IsFull);
            Assert.Null(store.Failure);
            await WaitDurableAsync(store, last);
            store.Dispose();

            store = Open(directory, reserveBytes: 0);
            try
            {
                Assert.Equal(stored, Recover(store).Of(StoredFateKind.Unsettled).Select(e => e.Ref));
            }
            finally
            {
                store.Dispose();
            }
        }
    }

    private IEnvelopeStore OpenStore()
    {
        IEnvelopeStore store = Open(_directory, reserveBytes: 0);
        _open.Add(store);
        return store;
    }

    /// <summary>Stops the store (as a relay that stops) and opens its directory again.</summary>
    private IEnvelopeStore Reopen(IEnvelopeStore store)
    {
        store.Dispose();
        _open.Remove(store);
        return OpenStore();
    }

    private static RecordingSink Recover(IEnvelopeStore store, long nowMs = 0) => Recover(store, new Dedup(), nowMs);

    private static RecordingSink Recover(IEnvelopeStore store, Dedup dedup, long nowMs)
    {
        var sink = new RecordingSink(dedup);
        store.Recover(sink, dedup, nowMs);
        Assert.True(sink.Finished);
        return sink;
    }

    private static async Task<(StoreRef Reference, DurableMark Mark)> AppendAsync(IEnvelopeStore store, byte[] frame, long acceptedAtMs, long expiresAtMs)
    {
        AppendResult result;
        StoreRef reference;
        DurableMark mark;
        while ((result = store.TryAppend(Sequence(frame), acceptedAtMs, expiresAtMs, out reference, out mark)) == AppendResult.Busy)
        {
            await store.WaitForSpaceAsync(TestContext.Current.CancellationToken);
        }

        Assert.Equal(AppendResult.Appended, result);
        return (reference, mark);
    }

    private static async Task WaitDurableAsync(IEnvelopeStore store, DurableMark mark)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (!store.Durable.Covers(mark))
        {
            var listener = new DurabilityListener();
            store.NotifyWhenDurable(listener);
            if (!store.Durable.Covers(mark))
            {
                await listener.Told.Task.WaitAsync(deadline - DateTime.UtcNow, TestContext.Current.CancellationToken);
            }
        }
    }

    private static async Task PollAsync(Func<bool> condition)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 30 s");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static ReadOnlySequence<byte> Sequence(byte[] frame) => new(frame);

    private static UInt128 IdOf(int i) => new(0xC0FFEE, (ulong)i + 1);

    /// <summary>An Envelope frame as a sender writes it (the store keeps it as bytes; its content only names it).</summary>
    private static byte[] Frame(int i, int ciphertextBytes = 100, string recipientUser = "user-1")
    {
        Envelope envelope = Envelopes.New("alpha", "beta", toUser: recipientUser, ciphertext: Envelopes.RandomCiphertext(ciphertextBytes));
        Span<byte> id = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(id, IdOf(i));
        envelope.MessageId = ByteString.CopyFrom(id);
        return new Frame { Envelope = envelope }.ToByteArray();
    }

    private sealed record Recovered(StoreRef Ref, StoreRef Next, long AcceptedAtMs, long ExpiresAtMs, byte[] Frame, StoredFate Fate);

    /// <summary>Takes what recovery hands over, keeps a copy, and remembers message ids as the route step's sink does.</summary>
    private sealed class RecordingSink(Dedup dedup) : IRecoverySink
    {
        public List<Recovered> All { get; } = [];

        public bool Finished { get; private set; }

        public IEnumerable<Recovered> Of(StoredFateKind kind) => All.Where(e => e.Fate.Kind == kind);

        public RecoveredAs Recover(in StoredEnvelope envelope, StoredFate fate)
        {
            byte[] frame = envelope.Frame.ToArray();
            All.Add(new Recovered(envelope.Ref, envelope.Next, envelope.AcceptedAtMs, envelope.ExpiresAtMs, frame, fate));
            byte[] id = Relayd.Protocol.V1.Frame.Parser.ParseFrom(frame).Envelope.MessageId.ToByteArray();
            dedup.Alpha.Record(System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(id), envelope.AcceptedAtMs);
            return RecoveredAs.Kept;
        }

        public void OnRecovered() => Finished = true;
    }

    private sealed class BacklogCollector(int stopAfter) : IBacklogReader
    {
        public List<Recovered> Read { get; } = [];

        public bool OnEnvelope(in StoredEnvelope envelope)
        {
            Read.Add(new Recovered(envelope.Ref, envelope.Next, envelope.AcceptedAtMs, envelope.ExpiresAtMs, envelope.Frame.ToArray(), default));
            return Read.Count < stopAfter;
        }
    }

    /// <summary>One sender partner, "alpha", with the route step's dedup index.</summary>
    private sealed class Dedup : IDedupIndexes
    {
        public IdempotencyIndex Alpha { get; } = new(capacity: 100_000, TimeSpan.FromDays(1));

        public IEnumerable<SenderDedup> All => [new SenderDedup("alpha"u8.ToArray(), Alpha)];

        public IdempotencyIndex? Find(string partnerId) => partnerId == "alpha" ? Alpha : null;
    }

    private sealed class DurabilityListener : IDurabilityListener
    {
        public TaskCompletionSource Told { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnDurable() => Told.TrySetResult();
    }
}
