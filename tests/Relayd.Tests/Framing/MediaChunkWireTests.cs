using System.Buffers;
using System.Buffers.Binary;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Framing;

/// <summary>The hand-encoded MediaChunk agrees with the generated code in both directions.</summary>
public sealed class MediaChunkWireTests
{
    [Theory]
    [InlineData(0L, 0)]
    [InlineData(0L, 1)]
    [InlineData(127L, 300)]
    [InlineData(5_000_000_000L, 65536)]
    public void A_hand_written_chunk_header_plus_data_parses_as_the_generated_MediaChunk(long offset, int length)
    {
        UInt128 id = new(0x0102030405060708, 0x090A0B0C0D0E0F10);
        byte[] data = new byte[length];
        Random.Shared.NextBytes(data);
        byte[] buffer = new byte[MediaChunkWire.MaxHeaderBytes + length];

        int header = MediaChunkWire.WriteHeader(buffer, id, (ulong)offset, length);
        data.CopyTo(buffer, header);
        Frame parsed = Frame.Parser.ParseDelimitedFrom(new MemoryStream(buffer, 0, header + length));

        Assert.Equal(Frame.BodyOneofCase.MediaChunk, parsed.BodyCase);
        Assert.Equal(id, BinaryPrimitives.ReadUInt128BigEndian(parsed.MediaChunk.TransferId.Span));
        Assert.Equal((ulong)offset, parsed.MediaChunk.Offset);
        Assert.Equal(data, parsed.MediaChunk.Data.ToByteArray());
    }

    [Fact]
    public void A_generated_MediaChunk_split_over_segments_is_read_in_place()
    {
        byte[] data = new byte[1000];
        Random.Shared.NextBytes(data);
        byte[] frame = new Frame { MediaChunk = new MediaChunk { TransferId = ByteString.CopyFrom(new byte[16]), Offset = 4096, Data = ByteString.CopyFrom(data) } }.ToByteArray();
        ReadOnlySequence<byte> split = Relayd.Tests.Infrastructure.SegmentedSequence.Of(frame, 7);

        Assert.True(MediaChunkWire.TryRead(split, out UInt128 id, out ulong offset, out ReadOnlySequence<byte> slice));
        Assert.Equal(UInt128.Zero, id);
        Assert.Equal(4096UL, offset);
        Assert.Equal(data, slice.ToArray());
    }

    [Fact]
    public void Other_frames_are_not_chunks_and_a_chunk_without_a_16_byte_id_is_malformed()
    {
        byte[] ping = new Frame { Ping = new Ping { Nonce = 1 } }.ToByteArray();
        byte[] badId = new Frame { MediaChunk = new MediaChunk { TransferId = ByteString.CopyFrom(new byte[3]), Data = ByteString.CopyFrom(new byte[5]) } }.ToByteArray();

        Assert.False(MediaChunkWire.TryRead(new ReadOnlySequence<byte>(ping), out _, out _, out _));
        Assert.Equal(ErrorCode.MalformedFrame, Assert.Throws<RelayException>(() => MediaChunkWire.TryRead(new ReadOnlySequence<byte>(badId), out _, out _, out _)).Code);
    }
}
