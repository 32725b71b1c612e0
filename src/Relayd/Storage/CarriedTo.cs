using System.Buffers;
using System.IO.Hashing;

namespace Relayd.Storage;

/// <summary>
/// What the relay remembers of where a message went, beside its id in the sender partner's dedup index: a hash of
/// the recipient partner's id, a hash of (sender user, recipient user) and whether the recipient acknowledged it.
/// 16 bytes, no references: abuse reports and read receipts check against it without the relay keeping user ids.
/// </summary>
/// <remarks>
/// Hashes, not ids: the relay never needs the users back, only to check a claim (reported user sent it to the
/// reporter; this partner received it). xxHash3 (64 bits for the users, the low 32 for the partner, whose ids are
/// the operator's configuration, tens of them) makes a false match negligible. Default = not known (an id the relay
/// only has from an RDD1 snapshot): such ids count as not carried.
/// </remarks>
internal readonly record struct CarriedTo(uint RecipientPartnerHash, uint Flags, ulong UsersHash)
{
    private const uint KnownFlag = 1;
    private const uint DeliveredFlag = 2;

    public bool IsKnown => (Flags & KnownFlag) != 0;

    /// <summary>The recipient partner acknowledged the Deliver frame (DeliveryAck).</summary>
    public bool Delivered => (Flags & DeliveredFlag) != 0;

    public static CarriedTo Of(ReadOnlySpan<byte> recipientPartnerUtf8, in ReadOnlySequence<byte> senderUser, in ReadOnlySequence<byte> recipientUser, bool delivered = false) =>
        new(PartnerHash(recipientPartnerUtf8), KnownFlag | (delivered ? DeliveredFlag : 0), HashUsers(senderUser, recipientUser));

    public CarriedTo WithDelivered() => this with { Flags = Flags | DeliveredFlag };

    /// <summary>Whether it was delivered to <paramref name="recipientPartnerUtf8"/> (any users).</summary>
    public bool DeliveredTo(ReadOnlySpan<byte> recipientPartnerUtf8) =>
        IsKnown && Delivered && RecipientPartnerHash == PartnerHash(recipientPartnerUtf8);

    /// <summary>Whether it was delivered to <paramref name="recipientPartnerUtf8"/> from <paramref name="senderUser"/> to <paramref name="recipientUser"/>.</summary>
    public bool DeliveredBetween(ReadOnlySpan<byte> recipientPartnerUtf8, ReadOnlySpan<byte> senderUser, ReadOnlySpan<byte> recipientUser) =>
        DeliveredTo(recipientPartnerUtf8) && UsersHash == HashUsers(senderUser, recipientUser);

    public static uint PartnerHash(ReadOnlySpan<byte> partnerUtf8) => (uint)XxHash3.HashToUInt64(partnerUtf8);

    /// <summary>One hash of the ordered pair: the recipient user hashed with the sender user's hash as its seed.</summary>
    public static ulong HashUsers(in ReadOnlySequence<byte> senderUser, in ReadOnlySequence<byte> recipientUser) =>
        Hash(recipientUser, (long)Hash(senderUser, 0));

    public static ulong HashUsers(ReadOnlySpan<byte> senderUser, ReadOnlySpan<byte> recipientUser) =>
        XxHash3.HashToUInt64(recipientUser, (long)XxHash3.HashToUInt64(senderUser));

    /// <summary>A user's hash as the admin's listing shows it (never the id itself).</summary>
    public static ulong UserHash(ReadOnlySpan<byte> user) => XxHash3.HashToUInt64(user);

    private static ulong Hash(in ReadOnlySequence<byte> value, long seed) => Internal.SequenceHash.XxHash3(value, seed);
}
