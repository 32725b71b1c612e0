using Google.Protobuf;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Fuzz;

/// <summary>
/// The binary seeds of fuzz/corpus/: small valid frames written by the generated code (plus the relay's own chunk
/// encoder), so afl starts from inputs that reach deep into each reader. The config seeds are hand-written TOML.
/// </summary>
internal static class SeedCorpus
{
    private const int MaxFieldNumber = (1 << 29) - 1;

    public static void Write(string directory)
    {
        Envelope full = new()
        {
            MessageId = Id(0x11),
            SenderPartner = "alpha",
            SenderUser = ByteString.CopyFromUtf8("user-1"),
            RecipientPartner = "beta",
            RecipientUser = ByteString.CopyFromUtf8("user-2"),
            ContentKind = ContentKind.Text,
            Ciphertext = ByteString.CopyFrom(new byte[24]),
            ClientTimestampMs = 1_700_000_000_000,
            ExpiresAtMs = 1_800_000_000_000,
        };
        Envelope minimal = new() { MessageId = Id(0x22), SenderPartner = "a", RecipientPartner = "b", RecipientUser = ByteString.CopyFromUtf8("u") };
        MediaChunk chunk = new() { TransferId = Id(0x33), Offset = 300, Data = ByteString.CopyFromUtf8("chunk data") };

        string frames = Folder(directory, "frame-reader");
        Save(frames, "hello-then-envelope.bin", Delimited(new Frame { Hello = new Hello { Versions = { ProtocolVersion._1 }, Agent = "seed" } }, new Frame { Envelope = minimal }));
        Save(frames, "ping.bin", Delimited(new Frame { Ping = new Ping { Nonce = 7 } }));
        Save(frames, "empty-frame-then-partial.bin", [0x00, 0x05, 0x42]);
        Save(frames, "overlong-lengths.bin", [0x80, 0x00, 0x85, 0x80, 0x80, 0x80, 0x00, .. new Frame { Ping = new Ping() }.ToByteArray(), 1, 2, 3, 4, 5]);
        Save(frames, "two-byte-length.bin", Delimited(new Frame { Envelope = new Envelope { Ciphertext = ByteString.CopyFrom(new byte[200]) } }));

        string envelopes = Folder(directory, "envelope-header");
        Save(envelopes, "full.bin", new Frame { Envelope = full }.ToByteArray());
        Save(envelopes, "extra-fields.bin", FrameOf(Frame.EnvelopeFieldNumber, WithUnknownFields(minimal)));
        // The smallest envelope seed is the overlong one, so that afl counts it among the favoured entries (the smallest
        // and fastest for each edge), which are nearly the only ones it fuzzes.
        Save(envelopes, "overlong-tags.bin", FrameOf(Frame.EnvelopeFieldNumber, WithOverlongTags(minimal)));
        Save(envelopes, "ack.bin", new Frame { Ack = new Ack { MessageId = Id(0x44), AcceptedAtMs = 5 } }.ToByteArray());

        string chunks = Folder(directory, "media-chunk");
        // As for envelopes, the overlong chunk is much the smallest (afl fuzzes its favoured entries: the smallest and
        // fastest for each edge), or afl hardly fuzzes it.
        Save(chunks, "overlong-tags.bin", FrameOf(Frame.MediaChunkFieldNumber, WithOverlongTags(new MediaChunk(chunk) { Offset = 1, Data = ByteString.CopyFromUtf8("x") })));
        Save(chunks, "hand-written-offset-0.bin", HandWrittenChunk(new MediaChunk(chunk) { Offset = 0, Data = ByteString.CopyFrom(new byte[32]) }));
        Save(chunks, "extra-fields.bin", FrameOf(Frame.MediaChunkFieldNumber, WithUnknownFields(chunk)));
        Save(chunks, "credit.bin", new Frame { MediaCredit = new MediaCredit { TransferId = Id(0x55), Bytes = 4096 } }.ToByteArray());
    }

    private static ByteString Id(byte fill) => ByteString.CopyFrom(Enumerable.Repeat(fill, 16).ToArray());

    private static byte[] Delimited(params Frame[] frames)
    {
        using var stream = new MemoryStream();
        foreach (Frame frame in frames)
        {
            frame.WriteDelimitedTo(stream);
        }

        return stream.ToArray();
    }

    /// <summary>
    /// The message followed by a varint, a fixed64, a fixed32 and a length-delimited field of unknown numbers, the last
    /// one with the largest field number (a five-byte tag).
    /// </summary>
    private static byte[] WithUnknownFields(IMessage message)
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        message.WriteTo(output);
        output.WriteTag(20, WireFormat.WireType.Varint);
        output.WriteUInt64(300);
        output.WriteTag(21, WireFormat.WireType.Fixed64);
        output.WriteFixed64(1);
        output.WriteTag(22, WireFormat.WireType.Fixed32);
        output.WriteFixed32(2);
        output.WriteTag(23, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFromUtf8("newer"));
        output.WriteTag(MaxFieldNumber, WireFormat.WireType.Varint);
        output.WriteUInt64(1);
        output.Flush();
        return stream.ToArray();
    }

    /// <summary>
    /// The message with every tag written as a five-byte varint: valid protobuf that no encoder writes, where a hand
    /// reader and the generated one most easily part ways (a flipped bit in the last byte changes what each one sees).
    /// </summary>
    private static byte[] WithOverlongTags(IMessage message)
    {
        var input = new CodedInputStream(message.ToByteArray());
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        for (uint tag = input.ReadTag(); tag != 0; tag = input.ReadTag())
        {
            output.WriteRawTag((byte)(tag | 0x80), (byte)((tag >> 7) | 0x80), (byte)((tag >> 14) | 0x80), (byte)((tag >> 21) | 0x80), (byte)(tag >> 28));
            switch (WireFormat.GetTagWireType(tag))
            {
                case WireFormat.WireType.Varint:
                    output.WriteUInt64(input.ReadUInt64());
                    break;
                case WireFormat.WireType.LengthDelimited:
                    output.WriteBytes(input.ReadBytes());
                    break;
                default:
                    throw new InvalidOperationException($"no seed needs wire type {WireFormat.GetTagWireType(tag)}");
            }
        }

        output.Flush();
        return stream.ToArray();
    }

    private static byte[] FrameOf(int field, byte[] body)
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(body));
        output.Flush();
        return stream.ToArray();
    }

    /// <summary>What the relay writes for a chunk: <see cref="MediaChunkWire.WriteHeader"/> then the data, without the length prefix.</summary>
    private static byte[] HandWrittenChunk(MediaChunk chunk)
    {
        byte[] buffer = new byte[MediaChunkWire.MaxHeaderBytes + chunk.Data.Length];
        int header = MediaChunkWire.WriteHeader(buffer, MediaChunkWire.ReadTransferId(chunk.TransferId), chunk.Offset, chunk.Data.Length);
        chunk.Data.Span.CopyTo(buffer.AsSpan(header));
        return buffer[LengthPrefixSize(buffer)..(header + chunk.Data.Length)];
    }

    private static int LengthPrefixSize(byte[] frame)
    {
        int n = 0;
        while (frame[n] >= 0x80)
        {
            n++;
        }

        return n + 1;
    }

    private static string Folder(string directory, string target) => Directory.CreateDirectory(Path.Combine(directory, target)).FullName;

    private static void Save(string folder, string name, byte[] bytes) => File.WriteAllBytes(Path.Combine(folder, name), bytes);
}
