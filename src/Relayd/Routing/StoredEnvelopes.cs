using System.Buffers;
using Relayd.Protocol.Internal;
using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>Reads what the store hands back (recovery, backlogs) as the route step read the frame when it arrived.</summary>
internal static class StoredEnvelopes
{
    /// <summary>The routing header of a stored frame; false when it cannot be read (an incompatible version stored it).</summary>
    public static bool TryReadHeader(in StoredEnvelope envelope, out EnvelopeHeader header)
    {
        try
        {
            return EnvelopeHeader.TryRead(envelope.Frame, out header) && header.HasValidMessageId;
        }
        catch (Relayd.Protocol.RelayException)
        {
            // Only a relay from before the strict reader stored such an envelope (one stock parsers read differently):
            // unreadable now, like any record of an incompatible version.
            header = default;
            return false;
        }
    }

    /// <summary>The approved partner that sent it, or null when it is no longer approved.</summary>
    public static PartnerInfo? Sender(PartnerDirectory partners, in ReadOnlySequence<byte> frame, in EnvelopeHeader header) =>
        partners.Find(frame.Slice(header.SenderPartner.Offset, header.SenderPartner.Length));

    /// <summary>The approved partner it is for, or null when it is no longer approved.</summary>
    public static PartnerInfo? Recipient(PartnerDirectory partners, in ReadOnlySequence<byte> frame, in EnvelopeHeader header) =>
        partners.Find(frame.Slice(header.RecipientPartner.Offset, header.RecipientPartner.Length));

    /// <summary>The shard of its conversation among <paramref name="shardCount"/> (as the route step chose it).</summary>
    public static int Shard(in ReadOnlySequence<byte> frame, in EnvelopeHeader header, int shardCount) =>
        EnvelopeRouter.ShardOf(frame.Slice(header.RecipientUser.Offset, header.RecipientUser.Length), shardCount);
}
