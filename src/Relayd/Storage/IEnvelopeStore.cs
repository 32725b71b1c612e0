using System.Buffers;
using Relayd.Protocol.V1;

namespace Relayd.Storage;

/// <summary>
/// Where accepted envelopes are kept until their fate is decided: the seam between the relay's in-memory queues and
/// its durable state. Appending never waits for the disk; the ack path waits for <see cref="Durable"/> to reach the
/// mark an append returned. The write-ahead log store (<c>WalStore.WalEnvelopeStore</c>) is the first
/// implementation; a second one must pass the same contract tests (tests/Relayd.Tests/Storage/EnvelopeStoreContract.cs).
/// </summary>
internal interface IEnvelopeStore : IDisposable
{
    /// <summary>True while the store is short of space: new envelopes are refused with STORAGE_FULL.</summary>
    bool IsFull { get; }

    /// <summary>Why the store failed (it then accepts and acknowledges nothing more), or null.</summary>
    Exception? Failure { get; }

    /// <summary>
    /// How long the store's commit in progress has been running (zero when none is); <see cref="TimeSpan.MaxValue"/>
    /// when its committer is gone. What the systemd watchdog asks before each ping: a hung commit must stop them.
    /// </summary>
    TimeSpan CommitInProgressFor { get; }

    /// <summary>How far the store is durable; compare with the marks appends returned.</summary>
    DurableMark Durable { get; }

    /// <summary>
    /// The mark of the newest append so far: waiting for it waits for every envelope appended before the call (what a
    /// resend's Ack waits for, as the dedup index keeps no mark per id).
    /// </summary>
    DurableMark AppendedEnd { get; }

    /// <summary>Raised once, on the thread that saw it, when the store fails (the relay must stop).</summary>
    event Action<Exception>? Failed;

    /// <summary>
    /// Stores an accepted envelope (its frame still sliced from the sender's pipe). Allocates nothing. On
    /// <see cref="AppendResult.Appended"/>, <paramref name="reference"/> names it for settling and
    /// <paramref name="durableAt"/> is what its Ack waits for.
    /// </summary>
    AppendResult TryAppend(in ReadOnlySequence<byte> frame, long acceptedAtMs, long expiresAtMs, out StoreRef reference, out DurableMark durableAt);

    /// <summary>Completes when an append that returned <see cref="AppendResult.Busy"/> may succeed.</summary>
    ValueTask WaitForSpaceAsync(CancellationToken cancellationToken);

    /// <summary>Calls <paramref name="listener"/> once after the store next becomes more durable (on the store's thread: be quick).</summary>
    void NotifyWhenDurable(IDurabilityListener listener);

    /// <summary>
    /// Marks envelopes settled: never delivered again after a restart, their space may be reclaimed. Not waited for
    /// (at-least-once: a crash first means one more delivery). <see cref="StoreRef.IsNone"/> entries are ignored.
    /// </summary>
    void Settle(ReadOnlySpan<StoreRef> envelopes);

    /// <summary>
    /// Marks envelopes settled whose receipts are held for a sender partner that is not connected: not delivered
    /// again, and after a restart recovery hands their receipts back (<see cref="StoredFateKind.Held"/>). Their space
    /// stays until <see cref="Settle"/> follows, once a session of the sender has taken the receipts.
    /// </summary>
    void SettleHeld(ReadOnlySpan<HeldReceiptEntry> held);

    /// <summary>Writes settlements that could not be written before (the store was busy or full); called from maintenance.</summary>
    void FlushSettled();

    /// <summary>Checks the free space against the reserve; returns true when <see cref="IsFull"/> changed.</summary>
    bool CheckSpace();

    /// <summary>
    /// Runs the space check an append asked for (it took new space) and a flag read otherwise. Call with no lock
    /// held, right after appending: appends run under the caller's locks, and the check is a syscall.
    /// </summary>
    void CheckSpaceIfDue();

    /// <summary>
    /// Replays the store at start, before the relay listens: restores <paramref name="dedup"/> from the store's dedup
    /// snapshot, then hands every stored envelope to <paramref name="sink"/> in append order with what the store knows
    /// of its fate. Call once, before any append.
    /// </summary>
    /// <exception cref="InvalidDataException">A stored envelope or the dedup snapshot cannot be read.</exception>
    void Recover(IRecoverySink sink, IDedupIndexes dedup, long nowMs);

    /// <summary>
    /// Reads the envelopes stored from <paramref name="from"/> on, in append order, skipping those settled before the
    /// start, until <paramref name="reader"/> returns false or the end of what is durable at the call. For the backlog
    /// of a spilled shard; one reader at a time.
    /// </summary>
    void ReadBacklog(StoreRef from, IBacklogReader reader);

    /// <summary>Reclaims the space of settled envelopes when due, saving <paramref name="dedup"/> first so ids outlive their envelopes.</summary>
    void RunRetention(IDedupIndexes dedup, long nowMs);

    /// <summary>A snapshot of the store for operators, with the queues' <paramref name="backlog"/>.</summary>
    StorageMetrics CaptureMetrics(IReadOnlyList<PartnerBacklog> backlog);
}

/// <summary>What an append did.</summary>
internal enum AppendResult
{
    /// <summary>Stored; durable once <see cref="IEnvelopeStore.Durable"/> reaches the returned mark.</summary>
    Appended,

    /// <summary>The store's write buffer is full: wait for space and retry the same envelope.</summary>
    Busy,

    /// <summary>No room on the disk; refused (the store is marked full).</summary>
    Full,

    /// <summary>The store failed; nothing more is stored (the relay is stopping).</summary>
    Failed,
}

/// <summary>Told when the store has made more envelopes durable; see <see cref="IEnvelopeStore.NotifyWhenDurable"/>.</summary>
internal interface IDurabilityListener
{
    void OnDurable();
}

/// <summary>An envelope settled with its receipt held for an absent sender: what the store keeps of it.</summary>
internal readonly record struct HeldReceiptEntry(StoreRef Envelope, ReceiptStatus Status, ErrorCode Code);
