using System.Buffers;
using System.Buffers.Binary;
using Google.Protobuf;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Framing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Routing;

/// <summary>The relay's hand-written wire code agrees with the generated protobuf code, field for field.</summary>
public sealed class WireFormatTests
{
    [Fact]
    public void The_envelope_header_reader_finds_the_fields_the_generated_parser_finds()
    {
        Frame frame = FrameReaderTests.SampleFrame(42);
        frame.Envelope.ExpiresAtMs = 1_800_000_000_000;
        frame.Envelope.ContentKind = (ContentKind)99; // unknown kinds are kept
        var wire = new ReadOnlySequence<byte>(frame.ToByteArray());

        Assert.True(EnvelopeHeader.TryRead(wire, out EnvelopeHeader header));

        Envelope e = frame.Envelope;
        Assert.Equal(BinaryPrimitives.ReadUInt128BigEndian(e.MessageId.Span), header.MessageId);
        Assert.Equal(e.SenderPartner, Utf8(wire, header.SenderPartner));
        Assert.Equal(e.RecipientPartner, Utf8(wire, header.RecipientPartner));
        Assert.Equal(e.RecipientUser.ToStringUtf8(), Utf8(wire, header.RecipientUser));
        Assert.Equal(e.Ciphertext.ToByteArray(), wire.Slice(header.Ciphertext.Offset, header.Ciphertext.Length).ToArray());
        Assert.Equal(99, header.ContentKind);
        Assert.Equal(e.ExpiresAtMs, header.ExpiresAtMs);
        Assert.Equal(e.ToByteArray(), wire.Slice(header.Envelope.Offset, header.Envelope.Length).ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(16_370)]
    [InlineData(1024 * 1024)]
    public void The_Deliver_frame_bound_covers_every_delivery_id_and_time_and_is_reached_by_the_largest(int ciphertextBytes)
    {
        Envelope envelope = FrameReaderTests.SampleFrame(1).Envelope;
        envelope.Ciphertext = ByteString.CopyFrom(new byte[ciphertextBytes]);
        int bound = WireFrames.MaxDeliverFrameBodyBytes(envelope.CalculateSize());

        int Size(ulong id, long at) => new Frame { Deliver = new Deliver { DeliveryId = id, Envelope = envelope, AcceptedAtMs = at } }.CalculateSize();

        Assert.Equal(bound, Size(ulong.MaxValue, long.MaxValue));
        Assert.True(Size(1, 1_765_000_000_000) <= bound);
        Assert.True(Size(0, 0) <= bound);
    }

    [Fact]
    public void The_header_reader_works_across_segment_boundaries()
    {
        byte[] bytes = FrameReaderTests.SampleFrame(7).ToByteArray();
        var whole = new ReadOnlySequence<byte>(bytes);
        ReadOnlySequence<byte> split = SegmentedSequence.Of(bytes, chunkSize: 3);

        Assert.True(EnvelopeHeader.TryRead(whole, out EnvelopeHeader a));
        Assert.True(EnvelopeHeader.TryRead(split, out EnvelopeHeader b));

        Assert.Equal(a, b);
    }

    [Fact]
    public void Frames_other_than_a_lone_envelope_are_left_to_the_generated_parser()
    {
        var ping = new ReadOnlySequence<byte>(new Frame { Ping = new Ping { Nonce = 5 } }.ToByteArray());

        Assert.False(EnvelopeHeader.TryRead(ping, out _));
    }

    [Fact]
    public void A_truncated_envelope_is_MALFORMED_FRAME()
    {
        byte[] bytes = FrameReaderTests.SampleFrame(3).ToByteArray();
        bytes[1] = 0x05; // claims a 5-byte envelope, whose first field then runs past it
        var wire = new ReadOnlySequence<byte>(bytes, 0, 7);

        var ex = Assert.Throws<Relayd.Protocol.RelayException>(() => EnvelopeHeader.TryRead(wire, out _));

        Assert.Equal(ErrorCode.MalformedFrame, ex.Code);
    }

    [Fact]
    public void A_hand_encoded_Deliver_frame_parses_with_the_generated_parser()
    {
        Envelope envelope = FrameReaderTests.SampleFrame(9).Envelope;
        byte[] envelopeBytes = envelope.ToByteArray();
        ulong deliveryId = (3UL << 48) | 12345;
        long acceptedAt = 1_765_000_000_123;
        byte[] buffer = new byte[WireFrames.DeliverFrameSize(envelopeBytes.Length, deliveryId, acceptedAt)];

        int n = WireFrames.WriteDeliverHeader(buffer, envelopeBytes.Length, deliveryId, acceptedAt);
        envelopeBytes.CopyTo(buffer.AsSpan(n));
        n += envelopeBytes.Length;
        n += WireFrames.WriteDeliverTrailer(buffer.AsSpan(n), acceptedAt);

        Assert.Equal(buffer.Length, n);
        Frame parsed = Frame.Parser.ParseDelimitedFrom(new MemoryStream(buffer));
        Assert.Equal(deliveryId, parsed.Deliver.DeliveryId);
        Assert.Equal(acceptedAt, parsed.Deliver.AcceptedAtMs);
        Assert.Equal(envelope, parsed.Deliver.Envelope);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_hand_encoded_Ack_parses_with_the_generated_parser(bool duplicate)
    {
        UInt128 id = new(0x0102030405060708, 0x090A0B0C0D0E0F10);
        byte[] buffer = new byte[WireFrames.MaxAckFrameBytes];

        int n = WireFrames.WriteAck(buffer, id, 1_765_000_000_000, duplicate);

        Frame parsed = Frame.Parser.ParseDelimitedFrom(new MemoryStream(buffer, 0, n));
        Assert.Equal(Convert.FromHexString("0102030405060708090A0B0C0D0E0F10"), parsed.Ack.MessageId.ToByteArray());
        Assert.Equal(1_765_000_000_000, parsed.Ack.AcceptedAtMs);
        Assert.Equal(duplicate, parsed.Ack.Duplicate);
    }

    [Fact]
    public void A_hand_encoded_Receipt_carries_every_id_status_and_code()
    {
        ReceiptItem[] items = [.. Enumerable.Range(1, 5).Select(i => new ReceiptItem((UInt128)i, ReceiptStatus.ExpiredUndelivered, ErrorCode.Expired))];
        byte[] buffer = new byte[WireFrames.MaxReceiptFrameBytes];

        int n = WireFrames.WriteReceipt(buffer, items, 77);

        Receipt receipt = Frame.Parser.ParseDelimitedFrom(new MemoryStream(buffer, 0, n)).Receipt;
        Assert.Equal(ReceiptStatus.ExpiredUndelivered, receipt.Status);
        Assert.Equal(ErrorCode.Expired, receipt.Code);
        Assert.Equal(77, receipt.AtMs);
        Assert.Equal(items.Select(i => i.MessageId), receipt.MessageIds.Select(b => BinaryPrimitives.ReadUInt128BigEndian(b.Span)));
    }

    private static string Utf8(ReadOnlySequence<byte> wire, FieldSlice slice) =>
        System.Text.Encoding.UTF8.GetString(wire.Slice(slice.Offset, slice.Length).ToArray());
}
