using Relayd.Storage;

namespace Relayd.Tests.Storage;

/// <summary>What a dedup index remembers, oldest first, read through <see cref="IdempotencyIndex.Visit"/> (what the snapshot writes).</summary>
internal static class IdempotencyIndexEntries
{
    public static void CopyTo(this IdempotencyIndex index, List<(UInt128 Id, long AcceptedAtMs, CarriedTo Carried)> destination, long nowMs)
    {
        var collector = new Collector(destination);
        index.Visit(ref collector, nowMs);
    }

    private readonly struct Collector(List<(UInt128 Id, long AcceptedAtMs, CarriedTo Carried)> destination) : IdempotencyIndex.IVisitor
    {
        public void Visit(UInt128 messageId, long acceptedAtMs, CarriedTo carried) => destination.Add((messageId, acceptedAtMs, carried));
    }
}
