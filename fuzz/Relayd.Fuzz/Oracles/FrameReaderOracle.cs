using System.Buffers;
using System.Text;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Fuzz.Oracles;

/// <summary>
/// <see cref="FrameReader.TryReadFrame"/> reads the input as a connection's byte stream, frame after frame, the way
/// a session's read loop does. Every step is checked against the exact (unbounded) value of the varint prefix at that
/// offset: a frame only for a prefix whose value fits the limit, with exactly the input's bytes; "more needed" only
/// when the input really ends first; FRAME_TOO_LARGE only beyond the limit. MALFORMED_FRAME is right for ten bytes of
/// continuation, and allowed (a stricter reader) for a ten-byte or overlong prefix or one beyond 64 bits. Every segmentation
/// must read the same.
/// </summary>
internal static class FrameReaderOracle
{
    /// <summary>RelayLimits' smallest frame limit: small enough that a two-byte prefix can exceed it.</summary>
    public const int MaxFrameBytes = 1024;

    public static void Check(byte[] input) => WireAgreement.AcrossSegmentations("FrameReader", input, stream => Read(input, stream));

    private static string Read(byte[] input, ReadOnlySequence<byte> stream)
    {
        var outcome = new StringBuilder();
        ReadOnlySequence<byte> buffer = stream;
        int at = 0;
        try
        {
            while (FrameReader.TryReadFrame(ref buffer, MaxFrameBytes, out ReadOnlySequence<byte> frame))
            {
                Prefix prefix = Prefix.At(input, at);
                long start = stream.Slice(0, frame.Start).Length;
                if (!prefix.Complete || prefix.Value > MaxFrameBytes || start != at + prefix.Bytes || (UInt128)frame.Length != prefix.Value
                    || !frame.ToArray().AsSpan().SequenceEqual(input.AsSpan((int)start, (int)frame.Length)))
                {
                    throw Violation(input, at, $"a frame at {start} of {frame.Length} bytes", prefix);
                }

                at = (int)(start + frame.Length);
                if (stream.Slice(0, buffer.Start).Length != at)
                {
                    throw Violation(input, at, $"the buffer left at {stream.Slice(0, buffer.Start).Length} after a frame ending at {at}", prefix);
                }

                outcome.Append($"frame {start}+{frame.Length}; ");
            }

            Prefix end = Prefix.At(input, at);
            bool endsFirst = !end.Complete ? end.Bytes < FrameReader.MaxVarintBytes
                : end.Value <= MaxFrameBytes && at + end.Bytes + (int)end.Value > input.Length;
            if (!endsFirst || stream.Slice(0, buffer.Start).Length != at)
            {
                throw Violation(input, at, "more bytes needed", end);
            }

            return outcome.Append($"more needed at {at}").ToString();
        }
        catch (RelayException ex) when (ex.Code is ErrorCode.FrameTooLarge or ErrorCode.MalformedFrame)
        {
            Prefix prefix = Prefix.At(input, at);
            // An incomplete prefix's value only grows with more bytes: beyond the limit already is beyond it for good.
            bool right = ex.Code == ErrorCode.FrameTooLarge
                ? prefix.Value > MaxFrameBytes
                : prefix.Bytes == FrameReader.MaxVarintBytes || (prefix.Complete && (prefix.Overlong || prefix.Value > ulong.MaxValue));
            if (!right)
            {
                throw Violation(input, at, ex.Code.ToString(), prefix);
            }

            return outcome.Append($"{ex.Code} at {at}").ToString();
        }
    }

    private static OracleViolationException Violation(byte[] input, int at, string read, Prefix prefix) =>
        new($"FrameReader read {read} where the prefix at {at} ({Convert.ToHexString(input.AsSpan(at, prefix.Bytes))}) is {prefix}");

    /// <summary>A varint length prefix decoded naively, with its exact value (up to 70 bits).</summary>
    private readonly record struct Prefix(UInt128 Value, int Bytes, bool Complete)
    {
        /// <summary>Longer than the value needs (e.g. <c>80 00</c> for 0): valid protobuf, but a strict reader may refuse it.</summary>
        public bool Overlong => Bytes > 1 && Value >> (7 * (Bytes - 1)) == 0;

        public static Prefix At(byte[] input, int at)
        {
            UInt128 value = 0;
            int n = 0;
            while (n < FrameReader.MaxVarintBytes && at + n < input.Length)
            {
                byte b = input[at + n];
                value |= (UInt128)(b & 0x7F) << (7 * n);
                n++;
                if (b < 0x80)
                {
                    return new Prefix(value, n, true);
                }
            }

            return new Prefix(value, n, false);
        }

        public override string ToString() => Complete ? $"the length {Value}" : $"incomplete ({Bytes} bytes so far, value {Value})";
    }
}
