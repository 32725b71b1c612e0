using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Relayd.Support.Evidence;

/// <summary>The kinds of statement (the first byte of a statement): docs/evidence.md, "Statements".</summary>
internal enum StatementKind : byte
{
    Accepted = 1,
    Delivery = 2,
}

/// <summary>A delivery statement's status byte.</summary>
internal enum DeliveryStatus : byte
{
    /// <summary>The recipient partner acknowledged the delivery.</summary>
    Acknowledged = 1,

    /// <summary>The message expired undelivered.</summary>
    Expired = 2,

    /// <summary>The relay refused the queued message undelivered: the sender or recipient user's consent was revoked while it waited (NOT_OPTED_IN).</summary>
    Refused = 3,
}

/// <summary>
/// The exact byte layouts of statements and tree heads (docs/evidence.md). Integers are big-endian; strings are UTF-8
/// behind a big-endian u16 length; hashes are SHA-256 (32 bytes).
/// </summary>
/// <remarks>
/// Accepted (kind 1): kind u8 | relay_id str | sender_partner str | sender_user_hash 32 | recipient_partner str |
/// recipient_user_hash 32 | message_id 16 | ciphertext_sha256 32 | accepted_at_ms u64.
/// Delivery (kind 2): kind u8 | relay_id str | sender_partner str | recipient_partner str | message_id 16 | status u8 |
/// delivered_at_ms u64 | acked_at_ms u64 (0 when expired or refused).
/// Tree head: magic "RLYDTH01" (8 ASCII bytes) | relay_id str | tree_id u64 | tree_size u64 | timestamp_ms u64 | root_hash 32.
/// </remarks>
internal static class EvidenceLayouts
{
    public static ReadOnlySpan<byte> TreeHeadMagic => "RLYDTH01"u8;

    // Domain separation for user hashes: a partner recomputes SHA-256(prefix || u16 len(partner) || partner || user).
    private static ReadOnlySpan<byte> UserHashPrefix => "relayd-evidence-user-v1\0"u8;

    /// <summary>The hash of a user id of <paramref name="partner"/> that statements carry; any partner that knows the user id recomputes it.</summary>
    public static byte[] UserHash(string partner, ReadOnlySpan<byte> user)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(UserHashPrefix);
        Span<byte> length = stackalloc byte[2];
        byte[] partnerBytes = Encoding.UTF8.GetBytes(partner);
        BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)partnerBytes.Length);
        hash.AppendData(length);
        hash.AppendData(partnerBytes);
        hash.AppendData(user);
        return hash.GetHashAndReset();
    }

    /// <summary>Bytes of an accepted statement with these ids (for a buffer to <see cref="WriteAccepted"/> into).</summary>
    public static int AcceptedBytes(string relayId, string senderPartner, string recipientPartner) =>
        1 + Writer.StrBytes(relayId) + Writer.StrBytes(senderPartner) + 32 + Writer.StrBytes(recipientPartner) + 32 + 16 + 32 + 8;

    /// <summary>Bytes of a delivery statement with these ids (for a buffer to <see cref="WriteDelivery"/> into).</summary>
    public static int DeliveryBytes(string relayId, string senderPartner, string recipientPartner) =>
        1 + Writer.StrBytes(relayId) + Writer.StrBytes(senderPartner) + Writer.StrBytes(recipientPartner) + 16 + 1 + 8 + 8;

    public static byte[] Accepted(string relayId, string senderPartner, ReadOnlySpan<byte> senderUserHash, string recipientPartner, ReadOnlySpan<byte> recipientUserHash, UInt128 messageId, ReadOnlySpan<byte> ciphertextSha256, long acceptedAtMs)
    {
        byte[] result = new byte[AcceptedBytes(relayId, senderPartner, recipientPartner)];
        WriteAccepted(result, relayId, senderPartner, senderUserHash, recipientPartner, recipientUserHash, messageId, ciphertextSha256, acceptedAtMs);
        return result;
    }

    /// <summary>Writes an accepted statement into <paramref name="destination"/> (exactly <see cref="AcceptedBytes"/> long).</summary>
    public static void WriteAccepted(Span<byte> destination, string relayId, string senderPartner, ReadOnlySpan<byte> senderUserHash, string recipientPartner, ReadOnlySpan<byte> recipientUserHash, UInt128 messageId, ReadOnlySpan<byte> ciphertextSha256, long acceptedAtMs)
    {
        var w = new Writer(destination);
        w.Byte((byte)StatementKind.Accepted);
        w.Str(relayId);
        w.Str(senderPartner);
        w.Bytes(senderUserHash, 32);
        w.Str(recipientPartner);
        w.Bytes(recipientUserHash, 32);
        w.MessageId(messageId);
        w.Bytes(ciphertextSha256, 32);
        w.U64((ulong)acceptedAtMs);
        w.CheckFull();
    }

    public static byte[] Delivery(string relayId, string senderPartner, string recipientPartner, UInt128 messageId, DeliveryStatus status, long deliveredAtMs, long ackedAtMs)
    {
        byte[] result = new byte[DeliveryBytes(relayId, senderPartner, recipientPartner)];
        WriteDelivery(result, relayId, senderPartner, recipientPartner, messageId, status, deliveredAtMs, ackedAtMs);
        return result;
    }

    /// <summary>Writes a delivery statement into <paramref name="destination"/> (exactly <see cref="DeliveryBytes"/> long).</summary>
    public static void WriteDelivery(Span<byte> destination, string relayId, string senderPartner, string recipientPartner, UInt128 messageId, DeliveryStatus status, long deliveredAtMs, long ackedAtMs)
    {
        var w = new Writer(destination);
        w.Byte((byte)StatementKind.Delivery);
        w.Str(relayId);
        w.Str(senderPartner);
        w.Str(recipientPartner);
        w.MessageId(messageId);
        w.Byte((byte)status);
        w.U64((ulong)deliveredAtMs);
        w.U64((ulong)ackedAtMs);
        w.CheckFull();
    }

    public static byte[] TreeHead(string relayId, ulong treeId, long treeSize, long timestampMs, ReadOnlySpan<byte> rootHash)
    {
        byte[] result = new byte[TreeHeadMagic.Length + Writer.StrBytes(relayId) + 8 + 8 + 8 + 32];
        var w = new Writer(result);
        w.Raw(TreeHeadMagic);
        w.Str(relayId);
        w.U64(treeId);
        w.U64((ulong)treeSize);
        w.U64((ulong)timestampMs);
        w.Bytes(rootHash, 32);
        w.CheckFull();
        return result;
    }

    /// <summary>Parses a statement; null with <paramref name="problem"/> when it is not one (bad kind, short, trailing bytes).</summary>
    public static Statement? ParseStatement(ReadOnlySpan<byte> bytes, out string? problem)
    {
        var r = new Reader(bytes);
        problem = null;
        try
        {
            var kind = (StatementKind)r.Byte();
            Statement s;
            switch (kind)
            {
                case StatementKind.Accepted:
                    s = new Statement { Kind = kind, RelayId = r.Str(), SenderPartner = r.Str(), SenderUserHash = r.Bytes(32), RecipientPartner = r.Str(), RecipientUserHash = r.Bytes(32), MessageId = r.MessageId(), CiphertextSha256 = r.Bytes(32), AcceptedAtMs = (long)r.U64() };
                    break;
                case StatementKind.Delivery:
                    s = new Statement { Kind = kind, RelayId = r.Str(), SenderPartner = r.Str(), RecipientPartner = r.Str(), MessageId = r.MessageId(), Status = (DeliveryStatus)r.Byte(), DeliveredAtMs = (long)r.U64(), AckedAtMs = (long)r.U64() };
                    break;
                default:
                    problem = $"unknown statement kind {(byte)kind}";
                    return null;
            }

            if (!r.AtEnd)
            {
                problem = "trailing bytes after the statement";
                return null;
            }

            return s;
        }
        catch (FormatException ex)
        {
            problem = ex.Message;
            return null;
        }
    }

    /// <summary>Whether <paramref name="statement"/> is about message <paramref name="messageId"/> of <paramref name="senderPartner"/>, read without parsing the rest (file scans).</summary>
    public static bool IsAbout(ReadOnlySpan<byte> statement, string senderPartner, UInt128 messageId)
    {
        var r = new Reader(statement);
        try
        {
            var kind = (StatementKind)r.Byte();
            r.SkipStr(); // relay id
            if (!r.StrEquals(senderPartner))
            {
                return false;
            }

            if (kind == StatementKind.Accepted)
            {
                r.Bytes(32);
                r.SkipStr();
                r.Bytes(32);
            }
            else if (kind == StatementKind.Delivery)
            {
                r.SkipStr();
            }
            else
            {
                return false;
            }

            return r.MessageId() == messageId;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>Parses a tree head; null with <paramref name="problem"/> when it is not one.</summary>
    public static TreeHeadFields? ParseTreeHead(ReadOnlySpan<byte> bytes, out string? problem)
    {
        problem = null;
        if (bytes.Length < TreeHeadMagic.Length || !bytes[..TreeHeadMagic.Length].SequenceEqual(TreeHeadMagic))
        {
            problem = "the tree head does not start with \"RLYDTH01\"";
            return null;
        }

        var r = new Reader(bytes[TreeHeadMagic.Length..]);
        try
        {
            var head = new TreeHeadFields(r.Str(), r.U64(), (long)r.U64(), (long)r.U64(), r.Bytes(32));
            if (!r.AtEnd)
            {
                problem = "trailing bytes after the tree head";
                return null;
            }

            return head;
        }
        catch (FormatException ex)
        {
            problem = "tree head: " + ex.Message;
            return null;
        }
    }

    // Writes a layout into an array sized exactly for it beforehand: one allocation per statement, no copies.
    private ref struct Writer(Span<byte> into)
    {
        private readonly Span<byte> _into = into;
        private int _at;

        /// <summary>Bytes <see cref="Str"/> writes for <paramref name="s"/>: its u16 length and UTF-8.</summary>
        public static int StrBytes(string s) => 2 + checked((ushort)Encoding.UTF8.GetByteCount(s));

        public void Byte(byte b) => _into[_at++] = b;

        public void Raw(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_into[_at..]);
            _at += bytes.Length;
        }

        public void Bytes(ReadOnlySpan<byte> bytes, int length)
        {
            if (bytes.Length != length)
            {
                throw new ArgumentException($"expected {length} bytes, got {bytes.Length}");
            }

            Raw(bytes);
        }

        public void Str(string s)
        {
            int length = Encoding.UTF8.GetBytes(s, _into[(_at + 2)..]);
            BinaryPrimitives.WriteUInt16BigEndian(_into[_at..], checked((ushort)length));
            _at += 2 + length;
        }

        public void U64(ulong value)
        {
            BinaryPrimitives.WriteUInt64BigEndian(_into[_at..], value);
            _at += 8;
        }

        public void MessageId(UInt128 id)
        {
            BinaryPrimitives.WriteUInt128BigEndian(_into[_at..], id);
            _at += 16;
        }

        /// <summary>The layout filled its array exactly (a size computed wrong fails here, not in a verifier).</summary>
        public readonly void CheckFull()
        {
            if (_at != _into.Length)
            {
                throw new InvalidOperationException($"layout wrote {_at} of {_into.Length} bytes");
            }
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private ReadOnlySpan<byte> _rest = bytes;

        public readonly bool AtEnd => _rest.IsEmpty;

        private ReadOnlySpan<byte> Take(int n)
        {
            if (_rest.Length < n)
            {
                throw new FormatException($"truncated: {n} more bytes expected, {_rest.Length} left");
            }

            ReadOnlySpan<byte> taken = _rest[..n];
            _rest = _rest[n..];
            return taken;
        }

        public byte Byte() => Take(1)[0];

        public byte[] Bytes(int n) => Take(n).ToArray();

        public string Str() => Encoding.UTF8.GetString(Take(BinaryPrimitives.ReadUInt16BigEndian(Take(2))));

        public void SkipStr() => Take(BinaryPrimitives.ReadUInt16BigEndian(Take(2)));

        public bool StrEquals(string s)
        {
            ReadOnlySpan<byte> bytes = Take(BinaryPrimitives.ReadUInt16BigEndian(Take(2)));
            return bytes.Length == Encoding.UTF8.GetByteCount(s) && Encoding.UTF8.GetString(bytes) == s;
        }

        public ulong U64() => BinaryPrimitives.ReadUInt64BigEndian(Take(8));

        public UInt128 MessageId() => BinaryPrimitives.ReadUInt128BigEndian(Take(16));
    }
}

/// <summary>A parsed statement (fields of the other kind are default).</summary>
internal sealed record Statement
{
    public StatementKind Kind { get; init; }
    public string RelayId { get; init; } = "";
    public string SenderPartner { get; init; } = "";
    public byte[] SenderUserHash { get; init; } = [];
    public string RecipientPartner { get; init; } = "";
    public byte[] RecipientUserHash { get; init; } = [];
    public UInt128 MessageId { get; init; }
    public byte[] CiphertextSha256 { get; init; } = [];
    public long AcceptedAtMs { get; init; }
    public DeliveryStatus Status { get; init; }
    public long DeliveredAtMs { get; init; }
    public long AckedAtMs { get; init; }
}

/// <summary>A parsed tree head.</summary>
internal sealed record TreeHeadFields(string RelayId, ulong TreeId, long TreeSize, long TimestampMs, byte[] RootHash);
