using System.Buffers;
using System.Runtime.CompilerServices;
using Relayd.Protocol.V1;

namespace Relayd.Protocol.Internal;

/// <summary>
/// Reads protobuf-delimited frames (varint length, then that many bytes of a serialized <see cref="Frame"/>)
/// from a pipe's buffer, without copying them.
/// </summary>
/// <remarks>
/// <code>
///  +-----------------------+--------------------------------------+
///  | length: varint (1-10) | Frame message: `length` bytes        |
///  +-----------------------+--------------------------------------+
/// </code>
/// The declared length is checked against the limit before any body byte is waited for, so a peer that announces
/// 2 GiB costs nothing but the few bytes it sent.
/// </remarks>
internal static class FrameReader
{
    /// <summary>Longest varint protobuf allows (a 64-bit value).</summary>
    public const int MaxVarintBytes = 10;

    /// <summary>
    /// Tries to slice one whole frame off the front of <paramref name="buffer"/>.
    /// Returns false when the buffer holds only part of a frame; the caller then reads more with
    /// <c>AdvanceTo(consumed: buffer.Start, examined: buffer.End)</c>.
    /// </summary>
    /// <param name="buffer">On success, advanced past the frame.</param>
    /// <param name="maxFrameBytes">Largest body length accepted.</param>
    /// <param name="frame">On success, the frame body (without its length prefix), a slice of the input.</param>
    /// <exception cref="RelayException"><see cref="ErrorCode.FrameTooLarge"/> or <see cref="ErrorCode.MalformedFrame"/>.</exception>
    public static bool TryReadFrame(ref ReadOnlySequence<byte> buffer, int maxFrameBytes, out ReadOnlySequence<byte> frame)
    {
        if (!TryReadLength(buffer, out ulong length, out int prefixBytes))
        {
            frame = default;
            return false;
        }

        if (length > (ulong)maxFrameBytes)
        {
            throw new RelayException(ErrorCode.FrameTooLarge, $"declared frame length {length} exceeds the limit of {maxFrameBytes} bytes");
        }

        long total = prefixBytes + (long)length;
        if (buffer.Length < total)
        {
            frame = default;
            return false;
        }

        frame = buffer.Slice(prefixBytes, (long)length);
        buffer = buffer.Slice(total);
        return true;
    }

    /// <summary>Decodes the length prefix. False when more bytes are needed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryReadLength(in ReadOnlySequence<byte> buffer, out ulong length, out int prefixBytes)
    {
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length > 0 && first[0] < 0x80)
        {
            length = first[0];
            prefixBytes = 1;
            return true;
        }

        return first.Length >= MaxVarintBytes
            ? VarintDecoder.TryDecode(first, out length, out prefixBytes)
            : TryReadLengthSlow(buffer, out length, out prefixBytes);
    }

    private static bool TryReadLengthSlow(in ReadOnlySequence<byte> buffer, out ulong length, out int prefixBytes)
    {
        Span<byte> scratch = stackalloc byte[MaxVarintBytes];
        int available = (int)Math.Min(buffer.Length, MaxVarintBytes);
        buffer.Slice(0, available).CopyTo(scratch);
        return VarintDecoder.TryDecode(scratch[..available], out length, out prefixBytes);
    }
}
