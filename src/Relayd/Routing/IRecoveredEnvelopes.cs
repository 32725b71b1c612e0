namespace Relayd.Routing;

/// <summary>
/// Told, during recovery, of each envelope the write-ahead log still holds (queued, held, settled or expired): what the
/// trace derives from the log instead of writing it twice (docs/operations.md, "Trace"). Called before the relay serves.
/// </summary>
internal interface IRecoveredEnvelopes
{
    void Recovered(PartnerInfo? sender, UInt128 messageId, PartnerInfo? recipient, long acceptedAtMs, int shard);
}
