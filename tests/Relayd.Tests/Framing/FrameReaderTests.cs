using System.Buffers;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Framing;

/// <summary>The frame reader: protobuf-delimited framing, limits checked before the body is waited for.</summary>
public sealed class FrameReaderTests
{
    private const int Limit = 1024 * 1024;

    [Fact]
    public void Frames_written_one_byte_at_a_time_parse_like_frames_coalesced_in_one_write()
    {
        Frame[] frames = [.. Enumerable.Range(0, 50).Select(SampleFrame)];
        byte[] wire = Delimited(frames);

        List<Frame> coalesced = ReadAll(new ReadOnlySequence<byte>(wire));
        List<Frame> byteByByte = ReadAll(SegmentedSequence.Of(wire, chunkSize: 1));
        List<Frame> oddChunks = ReadAll(SegmentedSequence.Of(wire, chunkSize: 7));

        Assert.Equal(frames, coalesced);
        Assert.Equal(frames, byteByByte);
        Assert.Equal(frames, oddChunks);
    }

    [Fact]
    public void Feeding_bytes_one_at_a_time_yields_each_frame_exactly_when_its_last_byte_arrives()
    {
        Frame[] frames = [SampleFrame(1), SampleFrame(2)];
        byte[] wire = Delimited(frames);
        int firstFrameEnd = (int)(CodedOutputStream.ComputeLengthSize(frames[0].CalculateSize()) + frames[0].CalculateSize());

        var parsed = new List<Frame>();
        int consumed = 0;
        for (int available = 1; available <= wire.Length; available++)
        {
            var buffer = new ReadOnlySequence<byte>(wire, consumed, available - consumed);
            while (FrameReader.TryReadFrame(ref buffer, Limit, out ReadOnlySequence<byte> frame))
            {
                parsed.Add(Frame.Parser.ParseFrom(frame));
                consumed = available - (int)buffer.Length;
                if (parsed.Count == 1)
                {
                    Assert.Equal(firstFrameEnd, available);
                }
            }
        }

        Assert.Equal(frames, parsed);
    }

    [Fact]
    public void A_declared_length_of_2_GiB_is_refused_as_FRAME_TOO_LARGE_before_anything_is_allocated()
    {
        byte[] wire = [0x80, 0x80, 0x80, 0x80, 0x08, 1, 2, 3]; // varint 2^31, then a few bytes
        var buffer = new ReadOnlySequence<byte>(wire);

        long before = GC.GetAllocatedBytesForCurrentThread();
        RelayException? refusal = null;
        try
        {
            FrameReader.TryReadFrame(ref buffer, Limit, out _);
        }
        catch (RelayException ex)
        {
            refusal = ex;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.NotNull(refusal);
        Assert.Equal(ErrorCode.FrameTooLarge, refusal.Code);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated} bytes refusing an oversize frame");
    }

    [Fact]
    public void A_length_varint_with_11_continuation_bytes_is_MALFORMED_FRAME()
    {
        byte[] wire = [.. Enumerable.Repeat((byte)0xFF, 11), 0x01];
        var buffer = new ReadOnlySequence<byte>(wire);

        RelayException ex = Assert.Throws<RelayException>(() => FrameReader.TryReadFrame(ref buffer, Limit, out _));

        Assert.Equal(ErrorCode.MalformedFrame, ex.Code);
    }

    [Fact]
    public void A_partial_length_prefix_asks_for_more_bytes()
    {
        var buffer = new ReadOnlySequence<byte>(new byte[] { 0x80, 0x80 });

        Assert.False(FrameReader.TryReadFrame(ref buffer, Limit, out _));
        Assert.Equal(2, buffer.Length);
    }

    [Fact]
    public void A_frame_exactly_at_the_limit_is_accepted_and_one_byte_more_is_not()
    {
        byte[] atLimit = Prefixed(new byte[1024]);
        byte[] overLimit = Prefixed(new byte[1025]);
        var ok = new ReadOnlySequence<byte>(atLimit);
        var tooBig = new ReadOnlySequence<byte>(overLimit);

        Assert.True(FrameReader.TryReadFrame(ref ok, 1024, out ReadOnlySequence<byte> frame));
        Assert.Equal(1024, frame.Length);
        Assert.Equal(ErrorCode.FrameTooLarge, Assert.Throws<RelayException>(() => FrameReader.TryReadFrame(ref tooBig, 1024, out _)).Code);
    }

    internal static Frame SampleFrame(int i) => new()
    {
        Envelope = new Envelope
        {
            MessageId = ByteString.CopyFrom(Guid.NewGuid().ToByteArray()),
            SenderPartner = "alpha",
            SenderUser = ByteString.CopyFromUtf8("u" + i),
            RecipientPartner = "beta",
            RecipientUser = ByteString.CopyFromUtf8("r" + i),
            ContentKind = ContentKind.Text,
            Ciphertext = ByteString.CopyFrom(new byte[i * 37 % 3000]),
            ClientTimestampMs = 1_700_000_000_000 + i,
        },
    };

    internal static byte[] Delimited(IEnumerable<Frame> frames)
    {
        using var stream = new MemoryStream();
        foreach (Frame frame in frames)
        {
            frame.WriteDelimitedTo(stream);
        }

        return stream.ToArray();
    }

    private static byte[] Prefixed(byte[] body)
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteLength(body.Length);
        output.Flush();
        stream.Write(body);
        return stream.ToArray();
    }

    private static List<Frame> ReadAll(ReadOnlySequence<byte> buffer)
    {
        var frames = new List<Frame>();
        while (FrameReader.TryReadFrame(ref buffer, Limit, out ReadOnlySequence<byte> frame))
        {
            frames.Add(Frame.Parser.ParseFrom(frame));
        }

        Assert.True(buffer.IsEmpty);
        return frames;
    }
}
