using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Tests.Framing;

/// <summary>
/// The relay routes on what its in-place readers see; the recipient's stock parser reads the same bytes. For every
/// input, either the relay's reader refuses it, or Google.Protobuf's generated parser parses it and agrees on every
/// routing field. Inputs are valid frames mutated the ways a hostile partner would (bit flips, truncation, duplicated
/// and reordered fields, over-long varints, tags with high bits, field 0, wrong wire types, groups, invalid UTF-8).
/// </summary>
public sealed class ParserDifferentialTests
{
    /// <summary>Cases per property per run; at least 100,000 as the security issue asks.</summary>
    private const int Cases = 100_000;

    [Fact]
    public void The_envelope_header_reader_refuses_or_agrees_with_Google_Protobuf_on_every_routing_field()
    {
        var tally = new Tally();
        MutatedEnvelopes.Sample(raw => CheckEnvelope(raw, tally), iter: Cases, print: Hex);

        // Both outcomes must be common, or the generator is not testing what it claims to.
        Assert.True(tally.Accepted > Cases / 10, $"only {tally.Accepted} of {Cases} mutants were accepted");
        Assert.True(tally.Refused > Cases / 10, $"only {tally.Refused} of {Cases} mutants were refused");
        TestContext.Current.SendDiagnosticMessage($"envelope differential: {tally.Accepted} accepted and agreed, {tally.Refused} refused, {tally.NotLone} left to the general path");
    }

    [Fact]
    public void The_media_chunk_reader_refuses_or_agrees_with_Google_Protobuf()
    {
        var tally = new Tally();
        MutatedChunks.Sample(raw => CheckChunk(raw, tally), iter: Cases, print: Hex);

        Assert.True(tally.Accepted > Cases / 10, $"only {tally.Accepted} of {Cases} mutants were accepted");
        Assert.True(tally.Refused > Cases / 10, $"only {tally.Refused} of {Cases} mutants were refused");
    }

    [Fact]
    public void The_client_deliver_reader_refuses_or_agrees_with_Google_Protobuf_on_every_field()
    {
        var tally = new Tally();
        MutatedDelivers.Sample(raw => CheckDeliver(raw, tally), iter: Cases, print: Hex);

        Assert.True(tally.Accepted > Cases / 10, $"only {tally.Accepted} of {Cases} mutants were accepted");
        Assert.True(tally.Refused > Cases / 10, $"only {tally.Refused} of {Cases} mutants were refused");
        TestContext.Current.SendDiagnosticMessage($"deliver differential: {tally.Accepted} accepted and agreed, {tally.Refused} refused, {tally.NotLone} left to the general path");
    }

    /// <summary>The finding that opened the security issue: field 2 with bit 32 of its tag set carries a forged sender.</summary>
    [Theory]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(34)]
    public void A_sender_partner_hidden_behind_a_tag_with_high_bits_is_MALFORMED_FRAME(int bit)
    {
        var fields = CanonicalFields(SampleEnvelope());
        fields.Add(new RawField(2, ProtoWire.WireLengthDelimited, Encoding.UTF8.GetBytes("alpha")) { TagHighBits = 1UL << (bit - 32) });
        byte[] frame = WrapEnvelope(Encode(fields));

        // What the recipient's parser would have read: the forged sender.
        Assert.Equal("alpha", Frame.Parser.ParseFrom(frame).Envelope.SenderPartner);
        var ex = Assert.Throws<RelayException>(() => EnvelopeHeader.TryRead(new ReadOnlySequence<byte>(frame), out _));
        Assert.Equal(ErrorCode.MalformedFrame, ex.Code);
    }

    public static TheoryData<string, string> StockRejects => new()
    {
        { "field number 0", "02 00" },
        { "group start", "0B" },
        { "wire type 6", "0E" },
        { "sender_partner not UTF-8", "12 02 C3 28" },
        { "recipient_partner not UTF-8", "22 01 FF" },
        { "length past the end", "3A 7F 00" },
    };

    /// <summary>Fields that parsers read in different ways (Google.Protobuf keeps a long tag's low 32 bits, upb refuses it).</summary>
    public static TheoryData<string, string> ReadDifferently => new()
    {
        { "6-byte tag for field 2", "92 80 80 80 80 00 00" },
        { "tag for field 2 in two bytes", "92 00 00" },
        { "int64 varint over 64 bits", "40 FF FF FF FF FF FF FF FF FF 7F" },
        { "content_kind beyond int32", "30 80 80 80 80 10" },
        { "a second sender_partner", "12 05 61 6C 70 68 61" },
        { "sender_partner as a varint", "10 01" },
        { "a 6-byte length (protoc's C++ runtime refuses it)", "3A 80 80 80 80 80 00" },
    };

    [Theory]
    [MemberData(nameof(ReadDifferently))]
    public void What_parsers_may_read_differently_the_relay_rejects(string what, string hexField)
    {
        byte[] body = [.. Encode(CanonicalFields(SampleEnvelope())), .. Convert.FromHexString(hexField.Replace(" ", "", StringComparison.Ordinal))];
        var ex = Assert.Throws<RelayException>(() => EnvelopeHeader.TryRead(new ReadOnlySequence<byte>(WrapEnvelope(body)), out _));
        Assert.True(ex.Code == ErrorCode.MalformedFrame, what);
    }

    /// <summary>Envelopes stock parsers refuse: accepting them would wedge a recipient whose client cannot read them.</summary>
    [Theory]
    [MemberData(nameof(StockRejects))]
    public void What_stock_parsers_reject_the_relay_rejects(string what, string hexField)
    {
        byte[] body = [.. Encode(CanonicalFields(SampleEnvelope())), .. Convert.FromHexString(hexField.Replace(" ", "", StringComparison.Ordinal))];
        byte[] frame = WrapEnvelope(body);

        // Google.Protobuf throws InvalidProtocolBufferException, or DecoderFallbackException for invalid UTF-8.
        Assert.ThrowsAny<Exception>(() => Frame.Parser.ParseFrom(frame));
        var ex = Assert.Throws<RelayException>(() => EnvelopeHeader.TryRead(new ReadOnlySequence<byte>(frame), out _));
        Assert.True(ex.Code == ErrorCode.MalformedFrame, what);
    }

    [Fact]
    public void A_repeated_routing_field_is_refused_rather_than_read_last_one_wins()
    {
        var fields = CanonicalFields(SampleEnvelope());
        fields.Add(new RawField(5, ProtoWire.WireLengthDelimited, [1, 2, 3])); // a second recipient_user
        byte[] frame = WrapEnvelope(Encode(fields));

        Assert.Equal(new byte[] { 1, 2, 3 }, Frame.Parser.ParseFrom(frame).Envelope.RecipientUser.ToByteArray());
        Assert.Equal(ErrorCode.MalformedFrame, Assert.Throws<RelayException>(() => EnvelopeHeader.TryRead(new ReadOnlySequence<byte>(frame), out _)).Code);
    }

    private static void CheckEnvelope(byte[] raw, Tally tally)
    {
        var wire = new ReadOnlySequence<byte>(raw);
        EnvelopeHeader header = default;
        if (!ReadByRelay(() => EnvelopeHeader.TryRead(wire, out header), tally))
        {
            return;
        }

        Frame parsed = ParseOrFail(raw, "an envelope");
        Assert.Equal(Frame.BodyOneofCase.Envelope, parsed.BodyCase);
        Envelope e = parsed.Envelope;
        Assert.Equal(e.MessageId.ToByteArray(), Bytes(wire, header.MessageIdSlice));
        Assert.Equal(e.SenderPartner, Encoding.UTF8.GetString(Bytes(wire, header.SenderPartner)));
        Assert.Equal(e.SenderUser.ToByteArray(), Bytes(wire, header.SenderUser));
        Assert.Equal(e.RecipientPartner, Encoding.UTF8.GetString(Bytes(wire, header.RecipientPartner)));
        Assert.Equal(e.RecipientUser.ToByteArray(), Bytes(wire, header.RecipientUser));
        Assert.Equal((int)e.ContentKind, header.ContentKind);
        Assert.Equal(e.ExpiresAtMs, header.ExpiresAtMs);
        Assert.Equal(e.ClientTimestampMs, header.ClientTimestampMs);
        Assert.Equal(e.Ciphertext.ToByteArray(), Bytes(wire, header.Ciphertext));
        if (header.HasValidMessageId)
        {
            Assert.Equal(BinaryPrimitives.ReadUInt128BigEndian(e.MessageId.Span), header.MessageId);
        }

        tally.CountAccepted();
    }

    // What ConsumeInPlaceAsync hands over must be what a Deliver parsed by Google.Protobuf holds (else it falls back to it).
    private static void CheckDeliver(byte[] raw, Tally tally)
    {
        var wire = new ReadOnlySequence<byte>(raw);
        ulong deliveryId = 0;
        long acceptedAtMs = 0;
        EnvelopeHeader fields = default;
        if (!ReadByRelay(() => DeliverWire.TryRead(wire, out deliveryId, out acceptedAtMs, out fields), tally))
        {
            return;
        }

        Frame parsed = ParseOrFail(raw, "a deliver");
        Assert.Equal(Frame.BodyOneofCase.Deliver, parsed.BodyCase);
        Deliver d = parsed.Deliver;
        Assert.Equal(d.DeliveryId, deliveryId);
        Assert.Equal(d.AcceptedAtMs, acceptedAtMs);
        Envelope e = d.Envelope;
        Assert.NotNull(e);
        Assert.Equal(e, Envelope.Parser.ParseFrom(Bytes(wire, fields.Envelope)));
        Assert.Equal(e.MessageId.ToByteArray(), Bytes(wire, fields.MessageIdSlice));
        Assert.Equal(e.SenderPartner, Encoding.UTF8.GetString(Bytes(wire, fields.SenderPartner)));
        Assert.Equal(e.SenderUser.ToByteArray(), Bytes(wire, fields.SenderUser));
        Assert.Equal(e.RecipientPartner, Encoding.UTF8.GetString(Bytes(wire, fields.RecipientPartner)));
        Assert.Equal(e.RecipientUser.ToByteArray(), Bytes(wire, fields.RecipientUser));
        Assert.Equal((int)e.ContentKind, fields.ContentKind);
        Assert.Equal(e.ExpiresAtMs, fields.ExpiresAtMs);
        Assert.Equal(e.ClientTimestampMs, fields.ClientTimestampMs);
        Assert.Equal(e.Ciphertext.ToByteArray(), Bytes(wire, fields.Ciphertext));
        tally.CountAccepted();
    }

    private static void CheckChunk(byte[] raw, Tally tally)
    {
        UInt128 id = default;
        ulong offset = 0;
        ReadOnlySequence<byte> data = default;
        if (!ReadByRelay(() => MediaChunkWire.TryRead(new ReadOnlySequence<byte>(raw), out id, out offset, out data), tally))
        {
            return;
        }

        Frame parsed = ParseOrFail(raw, "a media chunk");
        Assert.Equal(Frame.BodyOneofCase.MediaChunk, parsed.BodyCase);
        Assert.Equal(id, BinaryPrimitives.ReadUInt128BigEndian(parsed.MediaChunk.TransferId.Span));
        Assert.Equal(parsed.MediaChunk.Offset, offset);
        Assert.Equal(parsed.MediaChunk.Data.ToByteArray(), data.ToArray());
        tally.CountAccepted();
    }

    /// <summary>True when the relay's reader accepted the input; false (counted) when it refused it or left it to the general path.</summary>
    private static bool ReadByRelay(Func<bool> read, Tally tally)
    {
        try
        {
            if (read())
            {
                return true;
            }

            tally.CountNotLone();
        }
        catch (RelayException ex) when (ex.Code == ErrorCode.MalformedFrame)
        {
            tally.CountRefused();
        }

        return false;
    }

    private static Frame ParseOrFail(byte[] raw, string what)
    {
        try
        {
            return Frame.Parser.ParseFrom(raw);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or DecoderFallbackException)
        {
            throw new InvalidOperationException($"the relay accepted {what} Google.Protobuf rejects: {ex.Message}");
        }
    }

    // ---- generators ----

    private static readonly int[] EnvelopeFieldNumbers = [1, 2, 3, 4, 5, 6, 7, 8, 9];

    private static readonly string[] PartnerNames = ["alpha", "beta", "gamma", "délta", ""];

    private static readonly Gen<Envelope> ValidEnvelopes =
        Gen.Select(
            Gen.Byte.Array[Gen.Frequency((8, Gen.Const(16)), (1, Gen.Int[0, 20]))],
            Gen.Int[0, PartnerNames.Length - 1],
            Gen.Byte.Array[0, 12],
            Gen.Int[0, PartnerNames.Length - 1],
            Gen.Byte.Array[0, 12],
            Gen.Frequency((6, Gen.Int[0, 5]), (1, Gen.Int)),
            Gen.Byte.Array[0, 40],
            Gen.Select(Gen.Long, Gen.Long))
        .Select((id, sender, senderUser, recipient, recipientUser, kind, ciphertext, times) => new Envelope
        {
            MessageId = ByteString.CopyFrom(id),
            SenderPartner = PartnerNames[sender],
            SenderUser = ByteString.CopyFrom(senderUser),
            RecipientPartner = PartnerNames[recipient],
            RecipientUser = ByteString.CopyFrom(recipientUser),
            ContentKind = (ContentKind)kind,
            Ciphertext = ByteString.CopyFrom(ciphertext),
            ClientTimestampMs = times.Item1,
            ExpiresAtMs = times.Item2,
        });

    /// <summary>One mutation: a kind and three random numbers it draws positions and values from.</summary>
    private readonly record struct Mutation(int Kind, int A, int B, int C);

    private const int MutationKinds = 14;

    private static readonly Gen<Mutation> Mutations =
        Gen.Select(Gen.Int[0, MutationKinds - 1], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue])
            .Select((kind, a, b, c) => new Mutation(kind, a, b, c));

    /// <summary>Valid Envelope frames, mutated 0-3 times (also used by the protoc differential).</summary>
    internal static readonly Gen<byte[]> MutatedEnvelopes =
        Gen.Select(ValidEnvelopes, Mutations.Array[0, 3])
            .Select((envelope, mutations) => WrapEnvelope(Mutate(CanonicalFields(envelope), mutations, EnvelopeFieldNumbers)));

    /// <summary>Deliver frames as the relay writes them around an envelope a partner sent: both layers mutated 0-3 times.</summary>
    private static readonly Gen<byte[]> MutatedDelivers =
        Gen.Select(ValidEnvelopes, Mutations.Array[0, 2], Gen.ULong, Gen.Long, Mutations.Array[0, 2])
            .Select((envelope, inner, deliveryId, acceptedAtMs, outer) =>
            {
                byte[] body = Mutate(CanonicalFields(envelope), inner, EnvelopeFieldNumbers);
                List<RawField> deliver =
                [
                    new RawField(1, ProtoWire.WireVarint, Varint(deliveryId)) { RawVarint = true },
                    new RawField(2, ProtoWire.WireLengthDelimited, body),
                    new RawField(3, ProtoWire.WireVarint, Varint((ulong)acceptedAtMs)) { RawVarint = true },
                ];
                return Wrap(DeliverWire.FrameDeliverField, Mutate(deliver, outer, [1, 2, 3]));
            });

    private static readonly Gen<byte[]> MutatedChunks =
        Gen.Select(Gen.Byte.Array[Gen.Frequency((8, Gen.Const(16)), (1, Gen.Int[0, 20]))], Gen.ULong, Gen.Byte.Array[0, 64], Mutations.Array[0, 3])
            .Select((id, offset, data, mutations) =>
            {
                var chunk = new MediaChunk { TransferId = ByteString.CopyFrom(id), Offset = offset, Data = ByteString.CopyFrom(data) };
                return Wrap(MediaChunkWire.FrameMediaChunkField, Mutate(Fields(chunk.ToByteArray()), mutations, [1, 2, 3]));
            });

    private static byte[] Mutate(List<RawField> fields, Mutation[] mutations, int[] knownFields)
    {
        byte[]? bytes = null;
        foreach (Mutation m in mutations)
        {
            if (m.Kind >= 12)
            {
                // Byte-level mutations act on the encoded message.
                bytes ??= Encode(fields);
                if (bytes.Length == 0)
                {
                    continue;
                }

                bytes = m.Kind == 12
                    ? FlipBit(bytes, m.A % (bytes.Length * 8))
                    : bytes[..(m.A % bytes.Length)];
                continue;
            }

            if (bytes is not null)
            {
                continue; // structure is gone once bytes were mutated
            }

            int i = fields.Count == 0 ? 0 : m.A % fields.Count;
            switch (m.Kind)
            {
                case 0 when fields.Count > 0: // duplicate a field, at another place
                    fields.Insert(m.B % (fields.Count + 1), fields[i]);
                    break;
                case 1 when fields.Count > 1: // reorder
                    (fields[i], fields[m.B % fields.Count]) = (fields[m.B % fields.Count], fields[i]);
                    break;
                case 2 when fields.Count > 0: // wrong wire type
                    fields[i] = fields[i] with { WireType = m.B % 8 };
                    break;
                case 3 when fields.Count > 0: // over-long tag varint
                    fields[i] = fields[i] with { TagPad = 1 + (m.B % 6) };
                    break;
                case 4 when fields.Count > 0: // tag with high bits set (bits 32 .. 63)
                    fields[i] = fields[i] with { TagHighBits = 1UL << (m.B % 32) };
                    break;
                case 5 when fields.Count > 0: // over-long length or value varint
                    fields[i] = fields[i] with { ValuePad = 1 + (m.B % 6) };
                    break;
                case 6: // field number 0, or the largest / smallest legal ones
                    fields.Insert(m.B % (fields.Count + 1), new RawField(m.C % 3 == 0 ? 0 : m.C % 3 == 1 ? (1 << 29) - 1 : 1, m.B % 6, [7]));
                    break;
                case 7: // a string field with invalid UTF-8, or a forged duplicate of a routing string
                    fields.Insert(m.B % (fields.Count + 1), new RawField(m.C % 2 == 0 ? 2 : 4, ProtoWire.WireLengthDelimited, m.C % 4 < 2 ? [0xC3, 0x28] : Encoding.UTF8.GetBytes("alpha")));
                    break;
                case 8: // an unknown field of any wire type, groups included
                    fields.Insert(m.B % (fields.Count + 1), new RawField(10 + (m.C % 5000), m.B % 8, [(byte)m.C, (byte)(m.C >> 8), 0, 0, 0, 0, 0, 0]));
                    break;
                case 9: // a varint that does not fit 64 bits, or a content_kind beyond int32
                    fields.Insert(m.B % (fields.Count + 1), m.C % 2 == 0
                        ? new RawField(knownFields[m.C % knownFields.Length], ProtoWire.WireVarint, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, (byte)(2 + (m.C % 120))]) { RawVarint = true }
                        : new RawField(6, ProtoWire.WireVarint, Varint((ulong)m.C << 31)) { RawVarint = true });
                    break;
                case 10 when fields.Count > 0: // drop a field
                    fields.RemoveAt(i);
                    break;
                case 11: // a known field number with a random payload
                    fields.Insert(m.B % (fields.Count + 1), new RawField(knownFields[m.C % knownFields.Length], m.B % 3 == 0 ? ProtoWire.WireVarint : ProtoWire.WireLengthDelimited, m.B % 3 == 0 ? Varint((ulong)m.C) : BitConverter.GetBytes(m.C)) { RawVarint = m.B % 3 == 0 });
                    break;
            }
        }

        return bytes ?? Encode(fields);
    }

    // ---- a small raw encoder, able to write what a conforming encoder never would ----

    private sealed record RawField(int Number, int WireType, byte[] Payload)
    {
        public ulong TagHighBits { get; init; }
        public int TagPad { get; init; }
        public int ValuePad { get; init; }

        /// <summary>Payload is a varint already encoded (wire type 0).</summary>
        public bool RawVarint { get; init; }
    }

    private static List<RawField> CanonicalFields(Envelope envelope) => Fields(envelope.ToByteArray());

    /// <summary>Splits a message a conforming encoder wrote into its fields.</summary>
    private static List<RawField> Fields(byte[] message)
    {
        var fields = new List<RawField>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            int number = (int)(tag >> 3);
            int wire = (int)(tag & 7);
            fields.Add(wire == ProtoWire.WireLengthDelimited
                ? new RawField(number, wire, input.ReadBytes().ToByteArray())
                : new RawField(number, wire, Varint(input.ReadUInt64())) { RawVarint = true });
        }

        return fields;
    }

    private static byte[] Encode(List<RawField> fields)
    {
        var output = new List<byte>();
        foreach (RawField f in fields)
        {
            ulong tag = (ulong)(((uint)f.Number << 3) | (uint)f.WireType) | (f.TagHighBits << 32);
            output.AddRange(Varint(tag, f.TagPad));
            switch (f.WireType)
            {
                case ProtoWire.WireVarint:
                    output.AddRange(f.RawVarint ? Pad(f.Payload, f.ValuePad) : Varint((ulong)f.Payload.Length, f.ValuePad));
                    break;
                case ProtoWire.WireLengthDelimited:
                    output.AddRange(Varint((ulong)f.Payload.Length, f.ValuePad));
                    output.AddRange(f.Payload);
                    break;
                case ProtoWire.WireFixed64:
                    output.AddRange(Fixed(f.Payload, 8));
                    break;
                case ProtoWire.WireFixed32:
                    output.AddRange(Fixed(f.Payload, 4));
                    break;
                default: // groups (3, 4) and the undefined 6, 7: the tag alone
                    break;
            }
        }

        return [.. output];
    }

    private static byte[] Fixed(byte[] payload, int size)
    {
        byte[] value = new byte[size];
        payload.AsSpan(0, Math.Min(size, payload.Length)).CopyTo(value);
        return value;
    }

    private static byte[] Varint(ulong value, int pad = 0)
    {
        var bytes = new List<byte>();
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }

        bytes.Add((byte)value);
        return Pad([.. bytes], pad);
    }

    /// <summary>The same varint value in <paramref name="pad"/> more bytes (non-canonical, still at most 10 bytes for most).</summary>
    private static byte[] Pad(byte[] varint, int pad)
    {
        if (pad == 0 || varint.Length == 0 || varint[^1] >= 0x80)
        {
            return varint;
        }

        var bytes = new List<byte>(varint);
        bytes[^1] |= 0x80;
        for (int i = 1; i < pad; i++)
        {
            bytes.Add(0x80);
        }

        bytes.Add(0x00);
        return [.. bytes];
    }

    private static byte[] FlipBit(byte[] bytes, int bit)
    {
        byte[] copy = (byte[])bytes.Clone();
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }

    private static byte[] WrapEnvelope(byte[] body) => Wrap(3, body);

    private static byte[] Wrap(int frameField, byte[] body) =>
        [.. Varint(ProtoWire.Tag(frameField, ProtoWire.WireLengthDelimited)), .. Varint((ulong)body.Length), .. body];

    private static Envelope SampleEnvelope() => new()
    {
        MessageId = ByteString.CopyFrom(new byte[16]),
        SenderPartner = "gamma",
        SenderUser = ByteString.CopyFromUtf8("g-user"),
        RecipientPartner = "beta",
        RecipientUser = ByteString.CopyFromUtf8("b-user"),
        ContentKind = ContentKind.Text,
        Ciphertext = ByteString.CopyFromUtf8("ciphertext"),
    };

    private static byte[] Bytes(in ReadOnlySequence<byte> wire, FieldSlice slice) => wire.Slice(slice.Offset, slice.Length).ToArray();

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes);

    private sealed class Tally
    {
        private int _accepted;
        private int _refused;
        private int _notLone;

        public int Accepted => Volatile.Read(ref _accepted);
        public int Refused => Volatile.Read(ref _refused);
        public int NotLone => Volatile.Read(ref _notLone);

        public void CountAccepted() => Interlocked.Increment(ref _accepted);
        public void CountRefused() => Interlocked.Increment(ref _refused);
        public void CountNotLone() => Interlocked.Increment(ref _notLone);
    }
}
