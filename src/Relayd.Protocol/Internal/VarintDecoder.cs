using Relayd.Protocol.V1;

namespace Relayd.Protocol.Internal;

/// <summary>Protobuf base-128 varints, decoded in place.</summary>
internal static class VarintDecoder
{
    /// <summary>
    /// Decodes a varint from the start of <paramref name="source"/>. Returns false when the source ends before the
    /// varint does; throws <see cref="ErrorCode.MalformedFrame"/> when it is longer than 10 bytes.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> source, out ulong value, out int bytesRead)
    {
        ulong result = 0;
        int limit = Math.Min(source.Length, FrameReader.MaxVarintBytes);
        for (int i = 0; i < limit; i++)
        {
            byte b = source[i];
            if (i == FrameReader.MaxVarintBytes - 1 && b > 1)
            {
                throw new RelayException(ErrorCode.MalformedFrame, "varint does not fit 64 bits");
            }

            result |= (ulong)(b & 0x7F) << (7 * i);
            if (b < 0x80)
            {
                value = result;
                bytesRead = i + 1;
                return true;
            }
        }

        if (source.Length >= FrameReader.MaxVarintBytes)
        {
            throw new RelayException(ErrorCode.MalformedFrame, "varint longer than 10 bytes");
        }

        value = 0;
        bytesRead = 0;
        return false;
    }
}
