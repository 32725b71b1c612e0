using System.Buffers;
using System.Runtime.CompilerServices;
using Relayd.Protocol.V1;

namespace Relayd.Protocol.Framing;

/// <summary>
/// The few protobuf wire-format primitives the relay's hot path needs to read routing fields and write small frames
/// without materialising messages. Everything else goes through the generated code.
/// </summary>
public static class ProtoWire
{
    /// <summary>Protobuf wire types.</summary>
    public const int WireVarint = 0;
    public const int WireFixed64 = 1;
    public const int WireLengthDelimited = 2;
    public const int WireFixed32 = 5;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Tag(int fieldNumber, int wireType) => (uint)(fieldNumber << 3) | (uint)wireType;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int VarintSize(ulong value) => value < 0x80 ? 1 : (64 - System.Numerics.BitOperations.LeadingZeroCount(value) + 6) / 7;

    /// <summary>Writes a varint; returns the bytes written. The destination must hold <see cref="VarintSize"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int WriteVarint(Span<byte> destination, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>Size of a length-delimited field: tag, length, payload.</summary>
    public static int LengthDelimitedFieldSize(int fieldNumber, int payloadLength) =>
        VarintSize(Tag(fieldNumber, WireLengthDelimited)) + VarintSize((ulong)payloadLength) + payloadLength;

    /// <summary>Writes the tag and length of a length-delimited field; the payload follows.</summary>
    public static int WriteLengthDelimitedHeader(Span<byte> destination, int fieldNumber, int payloadLength)
    {
        int n = WriteVarint(destination, Tag(fieldNumber, WireLengthDelimited));
        return n + WriteVarint(destination[n..], (ulong)payloadLength);
    }

    /// <summary>Size of a varint field (tag and value).</summary>
    public static int VarintFieldSize(int fieldNumber, ulong value) => VarintSize(Tag(fieldNumber, WireVarint)) + VarintSize(value);

    public static int WriteVarintField(Span<byte> destination, int fieldNumber, ulong value)
    {
        int n = WriteVarint(destination, Tag(fieldNumber, WireVarint));
        return n + WriteVarint(destination[n..], value);
    }

    /// <summary>Reads a varint from a sequence; throws MALFORMED_FRAME when it is truncated or too long.</summary>
    public static ulong ReadVarint(ref SequenceReader<byte> reader)
    {
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (!reader.TryRead(out byte b))
            {
                throw Malformed("truncated varint");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw Malformed("varint longer than 10 bytes");
    }

    /// <summary>Reads a field's length prefix and checks that many bytes remain.</summary>
    public static int ReadLength(ref SequenceReader<byte> reader)
    {
        ulong length = ReadVarint(ref reader);
        if (length > (ulong)reader.Remaining)
        {
            throw Malformed("field length runs past the end of the frame");
        }

        return (int)length;
    }

    /// <summary>Skips a field of an unknown number, as protobuf requires of readers.</summary>
    public static void SkipField(ref SequenceReader<byte> reader, int wireType)
    {
        switch (wireType)
        {
            case WireVarint:
                ReadVarint(ref reader);
                break;
            case WireFixed64:
                Skip(ref reader, 8);
                break;
            case WireLengthDelimited:
                reader.Advance(ReadLength(ref reader));
                break;
            case WireFixed32:
                Skip(ref reader, 4);
                break;
            default:
                throw Malformed($"unsupported wire type {wireType}");
        }
    }

    private static void Skip(ref SequenceReader<byte> reader, int count)
    {
        if (reader.Remaining < count)
        {
            throw Malformed("truncated fixed-width field");
        }

        reader.Advance(count);
    }

    public static RelayException Malformed(string detail) => new(ErrorCode.MalformedFrame, detail);
}
