using System.Runtime.CompilerServices;
using Relayd.Routing;

namespace Relayd.Support.Evidence;

/// <summary>32 bytes held inline (a SHA-256), so an <see cref="EvidenceItem"/> carries its hashes without an array.</summary>
[InlineArray(32)]
internal struct Hash32
{
    private byte _first;
}

internal enum EvidenceItemKind : byte
{
    Accepted,
    Acknowledged,
    Expired,

    /// <summary>Settled undelivered with a REFUSED receipt (a user's consent revoked while it was queued).</summary>
    Refused,
}

/// <summary>
/// One step the evidence writer turns into a statement: what the data path queues after hashing what it must not keep. A struct in the queue's buffer: nothing allocated per message.
/// </summary>
internal struct EvidenceItem
{
    public EvidenceItemKind Kind;
    public PartnerInfo Sender;
    public PartnerInfo Recipient;
    public UInt128 MessageId;

    /// <summary>When the step happened (accepted, acknowledged, expired), Unix ms.</summary>
    public long AtMs;

    /// <summary>Acknowledged: when this run of the relay first wrote a Deliver of it (0: not known, e.g. delivered before a restart).</summary>
    public long DeliveredAtMs;
    public Hash32 SenderUserHash;
    public Hash32 RecipientUserHash;
    public Hash32 CiphertextSha256;
}
