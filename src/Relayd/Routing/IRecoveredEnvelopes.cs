namespace Relayd.Routing;

/// <summary>
/// Told, during recovery, of each envelope the write-ahead log still holds (queued, held, settled or expired): what the
/// trace derives from the log instead of writing it twice (docs/operations.md, "Trace"). Called before the relay serves.
/// </summary>
internal interface IRecoveredEnvelopes
{
    /// <param name="senderUser">Opaque, valid during the call only: hash it before keeping anything.</param>
    /// <param name="recipientUser">Opaque, valid during the call only: hash it before keeping anything.</param>
    void Recovered(PartnerInfo? sender, UInt128 messageId, PartnerInfo? recipient, long acceptedAtMs, int shard, int frameBytes, in System.Buffers.ReadOnlySequence<byte> senderUser, in System.Buffers.ReadOnlySequence<byte> recipientUser);
}
