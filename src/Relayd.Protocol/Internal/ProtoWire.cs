using System.Buffers;
using System.Runtime.CompilerServices;
using Relayd.Protocol.V1;

namespace Relayd.Protocol.Internal;

/// <summary>
/// The few protobuf wire-format primitives the relay's hot path needs to read routing fields and write small frames
/// without materialising messages. Everything else goes through the generated code.
/// </summary>
internal static class ProtoWire
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

    /// <summary>Largest field number protobuf allows (2^29 - 1).</summary>
    public const int MaxFieldNumber = (1 << 29) - 1;

    /// <summary>Longest varint of a 32-bit value (a tag, a length).</summary>
    private const int MaxVarint32Bytes = 5;

    /// <summary>
    /// Reads a varint from a sequence. Throws MALFORMED_FRAME when it is truncated, longer than 10 bytes, or does not
    /// fit 64 bits (a 10th byte above 1): stock parsers disagree on such values (some drop the high bits, some refuse),
    /// so the relay refuses them.
    /// </summary>
    public static ulong ReadVarint(ref SequenceReader<byte> reader)
    {
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (!reader.TryRead(out byte b))
            {
                throw Malformed("truncated varint");
            }

            if (shift == 63 && b > 1)
            {
                throw Malformed("varint does not fit 64 bits");
            }

            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }
        }

        throw Malformed("varint longer than 10 bytes");
    }

    /// <summary>
    /// Reads a field tag exactly as the protobuf specification defines it, so that every conforming parser reads the
    /// same field: a canonical (shortest) varint of at most 5 bytes whose value fits a uint32, a field number in
    /// 1 .. 2^29-1 and a wire type of 0, 1, 2 or 5 (groups, 3 and 4, are refused: relayd.v1 has none).
    /// </summary>
    /// <exception cref="RelayException">MALFORMED_FRAME naming the rule the tag breaks.</exception>
    /// <remarks>
    /// Parsers differ on tags outside these rules: Google.Protobuf keeps the low 32 bits of a longer tag varint, upb
    /// refuses it, and a reader that shifts a 64-bit tag sees another field number. A tag that every parser does not
    /// read the same way is never accepted.
    /// </remarks>
    public static void ReadTag(ref SequenceReader<byte> reader, out int fieldNumber, out int wireType)
    {
        // 0x0F: the 5th byte holds bits 28-31 of a uint32. Shortest form: what every encoder writes, and a padded tag
        // is where parsers start to differ.
        uint tag = ReadVarint32(ref reader, lastByteMax: 0x0F, shortestForm: true, "tag", "32 bits");
        fieldNumber = (int)(tag >> 3);
        wireType = (int)(tag & 7);
        if (fieldNumber == 0)
        {
            throw Malformed("field number 0 is not allowed");
        }

        if (wireType is not (WireVarint or WireFixed64 or WireLengthDelimited or WireFixed32))
        {
            throw Malformed(wireType is 3 or 4 ? $"field {fieldNumber} is a group (wire type {wireType}), which relayd.v1 does not use" : $"field {fieldNumber} has invalid wire type {wireType}");
        }
    }

    /// <summary>A varint of at most 5 bytes (a tag or a length), the 5th byte at most <paramref name="lastByteMax"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ReadVarint32(ref SequenceReader<byte> reader, byte lastByteMax, bool shortestForm, string what, string fits)
    {
        // Almost every tag and most lengths are one byte.
        if (reader.TryPeek(out byte first) && first < 0x80)
        {
            reader.Advance(1);
            return first;
        }

        return ReadVarint32Slow(ref reader, lastByteMax, shortestForm, what, fits);
    }

    private static uint ReadVarint32Slow(ref SequenceReader<byte> reader, byte lastByteMax, bool shortestForm, string what, string fits)
    {
        uint value = 0;
        for (int i = 0; ; i++)
        {
            if (!reader.TryRead(out byte b))
            {
                throw Malformed("truncated " + what);
            }

            if (i == MaxVarint32Bytes - 1 && b > lastByteMax)
            {
                throw Malformed($"{what} does not fit {fits} in at most {MaxVarint32Bytes} bytes");
            }

            value |= (uint)(b & 0x7F) << (7 * i);
            if (b < 0x80)
            {
                return shortestForm && b == 0 && i > 0 ? throw Malformed($"{what} varint is not in its shortest form") : value;
            }
        }
    }

    /// <summary>
    /// Reads a field's length prefix and checks that many bytes remain. A length is a varint of at most 5 bytes whose
    /// value fits an int32: protoc's C++ runtime refuses a longer one while Google.Protobuf reads it, so the relay
    /// refuses it (found by the protoc differential test).
    /// </summary>
    public static int ReadLength(ref SequenceReader<byte> reader)
    {
        // 0x07: the 5th byte holds bits 28-30 of an int32.
        uint length = ReadVarint32(ref reader, lastByteMax: 0x07, shortestForm: false, "field length", "an int32");
        if (length > (ulong)reader.Remaining)
        {
            throw Malformed("field length runs past the end of the enclosing message");
        }

        return (int)length;
    }

    /// <summary>
    /// Reads a field that must have <paramref name="expected"/> wire type and must not repeat. Throws
    /// MALFORMED_FRAME otherwise: a known field with another wire type is an unknown field to a stock parser (so it
    /// would read the default), and a repeated one is read last-one-wins; the relay accepts neither, so there is one
    /// reading of every routing field.
    /// </summary>
    public static void CheckKnownField(int fieldNumber, int wireType, int expected, ref uint seen)
    {
        if (wireType != expected)
        {
            throw Malformed($"field {fieldNumber} has wire type {wireType}, expected {expected}");
        }

        uint bit = 1u << fieldNumber;
        if ((seen & bit) != 0)
        {
            throw Malformed($"field {fieldNumber} appears more than once");
        }

        seen |= bit;
    }

    /// <summary>Checks that a string field is valid UTF-8, as protobuf requires of proto3 strings.</summary>
    /// <exception cref="RelayException">MALFORMED_FRAME when it is not.</exception>
    public static void CheckUtf8(in ReadOnlySequence<byte> value, int fieldNumber)
    {
        bool valid;
        if (value.IsSingleSegment)
        {
            valid = System.Text.Unicode.Utf8.IsValid(value.FirstSpan);
        }
        else if (value.Length <= MaxStackCopyBytes)
        {
            Span<byte> copy = stackalloc byte[MaxStackCopyBytes];
            value.CopyTo(copy);
            valid = System.Text.Unicode.Utf8.IsValid(copy[..(int)value.Length]);
        }
        else
        {
            byte[] rented = ArrayPool<byte>.Shared.Rent((int)value.Length);
            value.CopyTo(rented);
            valid = System.Text.Unicode.Utf8.IsValid(rented.AsSpan(0, (int)value.Length));
            ArrayPool<byte>.Shared.Return(rented);
        }

        if (!valid)
        {
            throw Malformed($"string field {fieldNumber} is not valid UTF-8");
        }
    }

    private const int MaxStackCopyBytes = 256;

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
