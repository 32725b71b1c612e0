using System.Buffers;

namespace Relayd.Routing;

/// <summary>
/// Told, during recovery and before the relay serves, of each envelope the write-ahead log still holds (queued,
/// held, settled or expired): what the shared-support features derive from the log instead of writing it twice, and
/// what a kill kept them from writing (the trace's accepted/durable steps, docs/operations.md "Trace"; evidence's
/// accepted statement, docs/evidence.md "After a crash").
/// </summary>
internal interface IRecoveredEnvelopes
{
    void Recovered(in RecoveredEnvelope envelope);
}

/// <summary>One replayed envelope, as <see cref="IRecoveredEnvelopes"/> sees it: slices of the stored frame, valid during the call only.</summary>
internal readonly ref struct RecoveredEnvelope
{
    /// <summary>Null when the sender partner is no longer approved.</summary>
    public required PartnerInfo? Sender { get; init; }

    /// <summary>Null when the recipient partner is no longer approved.</summary>
    public required PartnerInfo? Recipient { get; init; }

    public required UInt128 MessageId { get; init; }

    public required long AcceptedAtMs { get; init; }

    /// <summary>The recipient's shard it belongs to; 0 without a recipient.</summary>
    public required int Shard { get; init; }

    /// <summary>Bytes of the stored Envelope frame.</summary>
    public required int FrameBytes { get; init; }

    /// <summary>Opaque; hash it before keeping anything.</summary>
    public required ReadOnlySequence<byte> SenderUser { get; init; }

    /// <summary>Opaque; hash it before keeping anything.</summary>
    public required ReadOnlySequence<byte> RecipientUser { get; init; }

    /// <summary>What evidence hashes (SHA-256). Never kept, never logged.</summary>
    public required ReadOnlySequence<byte> Ciphertext { get; init; }
}
