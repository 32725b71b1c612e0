using System.Buffers;

namespace Relayd.Routing;

/// <summary>
/// Told of every envelope the log replays at start (queued, expired or settled), with slices of its stored frame valid
/// during the call: what lets signed delivery evidence re-derive an accepted statement the relay was killed before
/// writing (docs/evidence.md, "After a crash").
/// </summary>
internal interface IRecoveredEnvelopes
{
    void Recovered(PartnerInfo sender, PartnerInfo recipient, UInt128 messageId, in ReadOnlySequence<byte> senderUser, in ReadOnlySequence<byte> recipientUser, in ReadOnlySequence<byte> ciphertext, long acceptedAtMs);
}
