using System.Buffers;
using Relayd.Protocol.V1;

namespace Relayd.Storage;

/// <summary>
/// An envelope as the store hands it back (recovery, backlog reads): its reference, where a read resumes after it,
/// its times and the sender's frame exactly as stored. The frame is only valid during the callback.
/// </summary>
internal readonly record struct StoredEnvelope(StoreRef Ref, StoreRef Next, long AcceptedAtMs, long ExpiresAtMs, ReadOnlySequence<byte> Frame);

/// <summary>What the store knows of a stored envelope's fate at recovery.</summary>
internal enum StoredFateKind
{
    /// <summary>Not settled and not expired: waiting for its recipient.</summary>
    Unsettled,

    /// <summary>Not settled, but its expiry passed: to be settled as expired (EXPIRED_UNDELIVERED receipt).</summary>
    Expired,

    /// <summary>Settled; only its message id still matters (dedup).</summary>
    Settled,

    /// <summary>Settled with its receipt held for its sender partner (<see cref="StoredFate.Status"/>, <see cref="StoredFate.Code"/>).</summary>
    Held,
}

/// <summary>A stored envelope's fate; the receipt's status and code for <see cref="StoredFateKind.Held"/>.</summary>
internal readonly record struct StoredFate(StoredFateKind Kind, ReceiptStatus Status = ReceiptStatus.Unspecified, ErrorCode Code = ErrorCode.Unspecified);

/// <summary>What the layer above did with a recovered envelope.</summary>
internal enum RecoveredAs
{
    /// <summary>Taken (queued, held, expired or remembered): the store keeps its space until it is settled.</summary>
    Kept,

    /// <summary>Nobody to keep it for (its partner is no longer approved): its space may go.</summary>
    Dropped,

    /// <summary>The frame cannot be read (an incompatible version wrote it): recovery stops with an error.</summary>
    Unreadable,
}

/// <summary>
/// Where recovery puts what the store holds: implemented above the store (by Routing), which owns partners, queues
/// and held receipts.
/// </summary>
internal interface IRecoverySink
{
    /// <summary>One stored envelope, in append order (so in conversation order), with its fate.</summary>
    RecoveredAs Recover(in StoredEnvelope envelope, StoredFate fate);

    /// <summary>Every envelope was handed over; called once, before the store logs its summary.</summary>
    void OnRecovered();

    /// <summary>How far recovery has come; called about once a second while it runs (a long replay tells systemd it lives).</summary>
    void OnProgress(RecoveryProgress progress)
    {
    }
}

/// <summary>How far a recovery has come.</summary>
/// <param name="Envelopes">Envelope records replayed so far.</param>
/// <param name="Fraction">Of the replay of the retained log, 0 to 1.</param>
/// <param name="Elapsed">Since recovery began.</param>
internal readonly record struct RecoveryProgress(long Envelopes, double Fraction, TimeSpan Elapsed)
{
    /// <summary>"recovering: 1.2 M envelopes, 40%".</summary>
    public override string ToString() =>
        $"recovering the write-ahead log: {(Envelopes >= 1_000_000 ? $"{Envelopes / 1e6:F1} M" : Envelopes >= 1000 ? $"{Envelopes / 1e3:F1} k" : Envelopes.ToString(System.Globalization.CultureInfo.InvariantCulture))} envelopes, {Fraction:P0}";
}

/// <summary>Reads a spilled shard's backlog from the store; see <see cref="IEnvelopeStore.ReadBacklog"/>.</summary>
internal interface IBacklogReader
{
    /// <summary>The next stored envelope; false stops the read (memory is full again).</summary>
    bool OnEnvelope(in StoredEnvelope envelope);
}

/// <summary>
/// The dedup indexes of the sender partners, which the store saves beside the envelopes and restores at start
/// (so a resend is recognised after its envelope's space was reclaimed). Implemented above the store.
/// </summary>
internal interface IDedupIndexes
{
    IEnumerable<SenderDedup> All { get; }

    /// <summary>The index of sender partner <paramref name="partnerId"/>, or null when it is no longer approved.</summary>
    IdempotencyIndex? Find(string partnerId);
}

/// <summary>One sender partner's dedup index and its id (UTF-8), as the snapshot names it.</summary>
internal readonly record struct SenderDedup(byte[] PartnerIdUtf8, IdempotencyIndex Index);
