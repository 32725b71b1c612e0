using System.Buffers.Binary;
using System.Text;
using Relayd.Protocol.V1;

namespace Relayd.Support.Trace;

/// <summary>
/// The byte layout of the trace's segment files (docs/operations.md, "Trace"). A segment is the 8-byte magic
/// <c>RLTRACE1</c>, then batches: u32 length of what follows the 16-byte batch header, u32 CRC-32 of it, i64 base time
/// (Unix ms), then records. A record is a varint body length and a body: kind (u8), present-field mask (varint), time
/// as a zigzag varint from the batch's base, then the fields the mask names in a fixed order. Kind 255 names a
/// partner: its index in this segment and its id, written before the first record that uses it. Kind 254 marks where
/// a relay process began writing (varint Unix ms of its start): a group DURABLE never covers an ACCEPTED of an
/// earlier process (a session id and, after a crash, a log position may come again). A torn or damaged batch ends
/// the segment's reading (what a power loss may leave).
/// </summary>
internal static class TraceRecordCodec
{
    public const int MaxDetailBytes = 160;
    public const int BatchHeaderBytes = 16;

    /// <summary>Longest encoded record (every field, the longest detail), for buffer sizing.</summary>
    public const int MaxRecordBytes = 3 + 1 + 3 + 10 + 16 + (8 * 10) + 2 + 16 + 2 + MaxDetailBytes + 16;

    public static ReadOnlySpan<byte> Magic => "RLTRACE1"u8;

    private const byte PartnerKind = 255;
    private const byte StartedKind = 254;

    [Flags]
    private enum Field
    {
        Id = 1 << 0,
        Sender = 1 << 1,
        Recipient = 1 << 2,
        Session = 1 << 3,
        Number = 1 << 4,
        Bytes = 1 << 5,
        Total = 1 << 6,
        Code = 1 << 7,
        Status = 1 << 8,
        Shard = 1 << 9,
        Users = 1 << 10,
        Detail = 1 << 11,
        LogOnly = 1 << 12,
        FromLog = 1 << 13,
        NoId = 1 << 14,
        From = 1 << 15,
        Group = 1 << 16,
    }

    /// <summary>Writes the record that marks a relay process's start; returns its length.</summary>
    public static int WriteStarted(Span<byte> destination, long startedAtMs)
    {
        Span<byte> body = stackalloc byte[1 + 10];
        body[0] = StartedKind;
        int n = 1 + WriteVarint(body[1..], (ulong)startedAtMs);
        int total = WriteVarint(destination, (ulong)n);
        body[..n].CopyTo(destination[total..]);
        return total + n;
    }

    /// <summary>Writes the record naming partner <paramref name="index"/>; returns its length.</summary>
    public static int WritePartner(Span<byte> destination, int index, string id)
    {
        Span<byte> body = stackalloc byte[2 + 10 + 10 + 256];
        int n = 0;
        body[n++] = PartnerKind;
        n += WriteVarint(body[n..], (ulong)index);
        Span<byte> name = stackalloc byte[255];
        int length = Utf8Prefix(id, name);
        n += WriteVarint(body[n..], (ulong)length);
        name[..length].CopyTo(body[n..]);
        n += length;
        int total = WriteVarint(destination, (ulong)n);
        body[..n].CopyTo(destination[total..]);
        return total + n;
    }

    /// <summary>Writes <paramref name="entry"/> with its partners as segment indexes (-1: none); returns its length.</summary>
    public static int Write(Span<byte> destination, in TraceEntry entry, long baseMs, int senderIndex, int recipientIndex)
    {
        Span<byte> body = stackalloc byte[MaxRecordBytes];
        Field mask = 0;
        mask |= entry.Id != 0 ? Field.Id : 0;
        mask |= senderIndex >= 0 ? Field.Sender : 0;
        mask |= recipientIndex >= 0 ? Field.Recipient : 0;
        mask |= entry.Session != 0 ? Field.Session : 0;
        mask |= entry.Number != 0 ? Field.Number : 0;
        mask |= entry.Bytes != 0 ? Field.Bytes : 0;
        mask |= entry.TotalBytes != 0 ? Field.Total : 0;
        mask |= entry.Code != 0 ? Field.Code : 0;
        mask |= entry.Status != 0 ? Field.Status : 0;
        mask |= entry.Shard != 0 ? Field.Shard : 0;
        mask |= entry.SenderUserHash != 0 || entry.RecipientUserHash != 0 ? Field.Users : 0;
        mask |= entry.Detail is { Length: > 0 } ? Field.Detail : 0;
        mask |= (entry.Flags & TraceFlags.LogOnly) != 0 ? Field.LogOnly : 0;
        mask |= (entry.Flags & TraceFlags.FromLog) != 0 ? Field.FromLog : 0;
        mask |= (entry.Flags & TraceFlags.NoId) != 0 ? Field.NoId : 0;
        mask |= entry.From != 0 ? Field.From : 0;
        mask |= (entry.Flags & TraceFlags.Group) != 0 ? Field.Group : 0;

        int n = 0;
        body[n++] = (byte)entry.Kind;
        n += WriteVarint(body[n..], (ulong)mask);
        long delta = entry.AtMs - baseMs;
        n += WriteVarint(body[n..], (ulong)((delta << 1) ^ (delta >> 63)));
        if ((mask & Field.Id) != 0)
        {
            BinaryPrimitives.WriteUInt128BigEndian(body[n..], entry.Id);
            n += 16;
        }

        n += (mask & Field.Sender) != 0 ? WriteVarint(body[n..], (ulong)senderIndex) : 0;
        n += (mask & Field.Recipient) != 0 ? WriteVarint(body[n..], (ulong)recipientIndex) : 0;
        n += (mask & Field.Session) != 0 ? WriteVarint(body[n..], (ulong)entry.Session) : 0;
        n += (mask & Field.Number) != 0 ? WriteVarint(body[n..], entry.Number) : 0;
        n += (mask & Field.Bytes) != 0 ? WriteVarint(body[n..], (ulong)entry.Bytes) : 0;
        n += (mask & Field.Total) != 0 ? WriteVarint(body[n..], (ulong)entry.TotalBytes) : 0;
        n += (mask & Field.Code) != 0 ? WriteVarint(body[n..], (ulong)(uint)entry.Code) : 0;
        n += (mask & Field.Status) != 0 ? WriteVarint(body[n..], (ulong)(uint)entry.Status) : 0;
        n += (mask & Field.Shard) != 0 ? WriteVarint(body[n..], entry.Shard) : 0;
        n += (mask & Field.From) != 0 ? WriteVarint(body[n..], entry.From) : 0;
        if ((mask & Field.Users) != 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(body[n..], entry.SenderUserHash);
            BinaryPrimitives.WriteUInt64LittleEndian(body[(n + 8)..], entry.RecipientUserHash);
            n += 16;
        }

        if ((mask & Field.Detail) != 0)
        {
            Span<byte> detail = stackalloc byte[MaxDetailBytes];
            int length = Utf8Prefix(entry.Detail!, detail);
            n += WriteVarint(body[n..], (ulong)length);
            detail[..length].CopyTo(body[n..]);
            n += length;
        }

        int total = WriteVarint(destination, (ulong)n);
        body[..n].CopyTo(destination[total..]);
        return total + n;
    }

    /// <summary>
    /// Reads the records of one batch body (after its header) into <paramref name="onRecord"/>, keeping the segment's
    /// partner table in <paramref name="partners"/>, and each process start into <paramref name="onStarted"/>. False
    /// when the body is malformed (the rest is skipped).
    /// </summary>
    public static bool ReadBatch(ReadOnlySpan<byte> batch, long baseMs, List<string> partners, Func<TraceEventKind, UInt128, bool> wanted, Action<TraceRecord> onRecord, Action<long>? onStarted = null)
    {
        int at = 0;
        while (at < batch.Length)
        {
            if (!TryReadVarint(batch, ref at, out ulong length) || length == 0 || (ulong)(batch.Length - at) < length)
            {
                return false;
            }

            ReadOnlySpan<byte> body = batch.Slice(at, (int)length);
            at += (int)length;
            if (body[0] == PartnerKind)
            {
                int p = 1;
                if (!TryReadVarint(body, ref p, out ulong index) || !TryReadVarint(body, ref p, out ulong nameLength) || (ulong)(body.Length - p) < nameLength)
                {
                    return false;
                }

                string name = Encoding.UTF8.GetString(body.Slice(p, (int)nameLength));
                while (partners.Count <= (int)index)
                {
                    partners.Add("");
                }

                partners[(int)index] = name;
                continue;
            }

            if (body[0] == StartedKind)
            {
                int p = 1;
                if (!TryReadVarint(body, ref p, out ulong startedAtMs))
                {
                    return false;
                }

                onStarted?.Invoke((long)startedAtMs);
                continue;
            }

            if (!Wanted(body, wanted))
            {
                continue;
            }

            if (Read(body, baseMs, partners) is not { } record)
            {
                return false;
            }

            onRecord(record);
        }

        return true;
    }

    // The kind and id, read without decoding the rest: a scan decodes only the records it keeps.
    private static bool Wanted(ReadOnlySpan<byte> body, Func<TraceEventKind, UInt128, bool> wanted)
    {
        int at = 1;
        if (!TryReadVarint(body, ref at, out ulong mask) || !TryReadVarint(body, ref at, out _))
        {
            return true; // let Read report it malformed
        }

        UInt128 id = (mask & (ulong)Field.Id) != 0 && body.Length - at >= 16 ? BinaryPrimitives.ReadUInt128BigEndian(body[at..]) : 0;
        return wanted((TraceEventKind)body[0], id);
    }

    private static TraceRecord? Read(ReadOnlySpan<byte> body, long baseMs, List<string> partners)
    {
        int at = 1;
        if (!TryReadVarint(body, ref at, out ulong maskBits) || !TryReadVarint(body, ref at, out ulong zigzag))
        {
            return null;
        }

        var mask = (Field)maskBits;
        long delta = (long)(zigzag >> 1) ^ -(long)(zigzag & 1);
        UInt128 id = 0;
        if ((mask & Field.Id) != 0)
        {
            if (body.Length - at < 16)
            {
                return null;
            }

            id = BinaryPrimitives.ReadUInt128BigEndian(body[at..]);
            at += 16;
        }

        bool ok = true;
        ulong Next(Field field, ReadOnlySpan<byte> span, ref int position)
        {
            if ((mask & field) == 0)
            {
                return 0;
            }

            ok &= TryReadVarint(span, ref position, out ulong value);
            return value;
        }

        ulong sender = Next(Field.Sender, body, ref at);
        ulong recipient = Next(Field.Recipient, body, ref at);
        ulong session = Next(Field.Session, body, ref at);
        ulong number = Next(Field.Number, body, ref at);
        ulong bytes = Next(Field.Bytes, body, ref at);
        ulong total = Next(Field.Total, body, ref at);
        ulong code = Next(Field.Code, body, ref at);
        ulong status = Next(Field.Status, body, ref at);
        ulong shard = Next(Field.Shard, body, ref at);
        ulong from = Next(Field.From, body, ref at);
        ulong senderUser = 0, recipientUser = 0;
        if (ok && (mask & Field.Users) != 0)
        {
            if (body.Length - at < 16)
            {
                return null;
            }

            senderUser = BinaryPrimitives.ReadUInt64LittleEndian(body[at..]);
            recipientUser = BinaryPrimitives.ReadUInt64LittleEndian(body[(at + 8)..]);
            at += 16;
        }

        string? detail = null;
        if (ok && (mask & Field.Detail) != 0)
        {
            ok &= TryReadVarint(body, ref at, out ulong length) && (ulong)(body.Length - at) >= length;
            detail = ok ? Encoding.UTF8.GetString(body.Slice(at, (int)length)) : null;
        }

        if (!ok)
        {
            return null;
        }

        string? Partner(Field field, ulong index) =>
            (mask & field) == 0 ? null : index < (ulong)partners.Count ? partners[(int)index] : "?";

        return new TraceRecord
        {
            Kind = (TraceEventKind)body[0],
            Flags = ((mask & Field.LogOnly) != 0 ? TraceFlags.LogOnly : 0) | ((mask & Field.FromLog) != 0 ? TraceFlags.FromLog : 0) | ((mask & Field.NoId) != 0 ? TraceFlags.NoId : 0)
                | ((mask & Field.Group) != 0 ? TraceFlags.Group : 0),
            AtMs = baseMs + delta,
            Id = id,
            Sender = Partner(Field.Sender, sender),
            Recipient = Partner(Field.Recipient, recipient),
            Session = (long)session,
            Number = number,
            From = from,
            Bytes = (long)bytes,
            TotalBytes = (long)total,
            Code = (ErrorCode)(int)code,
            Status = (ReceiptStatus)(int)status,
            Shard = (int)shard,
            SenderUserHash = senderUser,
            RecipientUserHash = recipientUser,
            Detail = detail,
        };
    }

    private static int WriteVarint(Span<byte> destination, ulong value)
    {
        int n = 0;
        while (value >= 0x80)
        {
            destination[n++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[n++] = (byte)value;
        return n;
    }

    private static bool TryReadVarint(ReadOnlySpan<byte> source, ref int at, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && at < source.Length; shift += 7)
        {
            byte b = source[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }

        return false;
    }

    // The longest whole-character UTF-8 prefix of text that fits destination; returns its byte count.
    private static int Utf8Prefix(string text, Span<byte> destination)
    {
        if (Encoding.UTF8.TryGetBytes(text, destination, out int written))
        {
            return written;
        }

        // Too long: cut at a character boundary (rare: only long details and ids).
        int chars = Math.Min(text.Length, destination.Length);
        while (chars > 0)
        {
            int cut = char.IsHighSurrogate(text[chars - 1]) ? chars - 1 : chars;
            if (Encoding.UTF8.TryGetBytes(text.AsSpan(0, cut), destination, out written))
            {
                return written;
            }

            chars = cut - 1;
        }

        return 0;
    }
}
