using System.Buffers;
using System.Text;
using Relayd.Protocol;
using Relayd.Protocol.Framing;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Fuzz.Oracles;

/// <summary>
/// <see cref="FrameReader.TryReadFrame"/> reads the input as a connection's byte stream, frame after frame, the way
/// a session's read loop does, and must agree with a plain reference decoding of the varint length prefixes: the
/// same frames (offsets and bytes), then the same ending (more bytes needed, FRAME_TOO_LARGE or MALFORMED_FRAME at
/// the same offset), whatever the segmentation.
/// </summary>
internal static class FrameReaderOracle
{
    /// <summary>RelayLimits' smallest frame limit: small enough that a two-byte prefix can exceed it.</summary>
    public const int MaxFrameBytes = 1024;

    public static void Check(byte[] input)
    {
        string expected = Reference(input);
        foreach (int segmentSize in FuzzTargets.SegmentSizes)
        {
            string actual = Read(input, SegmentedSequence.Of(input, segmentSize));
            if (actual != expected)
            {
                throw new OracleViolationException($"FrameReader (segments of {segmentSize}) read [{actual}], the reference reads [{expected}]");
            }
        }
    }

    private static string Read(byte[] input, ReadOnlySequence<byte> stream)
    {
        var outcome = new StringBuilder();
        ReadOnlySequence<byte> buffer = stream;
        try
        {
            while (FrameReader.TryReadFrame(ref buffer, MaxFrameBytes, out ReadOnlySequence<byte> frame))
            {
                long start = stream.Slice(0, frame.Start).Length;
                if (frame.Length > MaxFrameBytes || !frame.ToArray().AsSpan().SequenceEqual(input.AsSpan((int)start, (int)frame.Length)))
                {
                    throw new OracleViolationException($"the frame at {start} (length {frame.Length}) is not the input's bytes there");
                }

                if (stream.Slice(0, buffer.Start).Length != start + frame.Length)
                {
                    throw new OracleViolationException($"after the frame at {start} the buffer does not start right behind it");
                }

                outcome.Append($"frame {start}+{frame.Length}; ");
            }

            outcome.Append($"more needed at {input.Length - buffer.Length}");
        }
        catch (RelayException ex) when (ex.Code is ErrorCode.FrameTooLarge or ErrorCode.MalformedFrame)
        {
            outcome.Append($"{ex.Code} at {input.Length - buffer.Length}");
        }

        return outcome.ToString();
    }

    /// <summary>The protobuf delimited format read naively, with the exact (unbounded) value of each prefix.</summary>
    private static string Reference(byte[] input)
    {
        var outcome = new StringBuilder();
        int at = 0;
        while (true)
        {
            UInt128 length = 0;
            int prefix = 0;
            bool complete = false;
            while (prefix < FrameReader.MaxVarintBytes && at + prefix < input.Length)
            {
                byte b = input[at + prefix];
                length |= (UInt128)(b & 0x7F) << (7 * prefix);
                prefix++;
                if (b < 0x80)
                {
                    complete = true;
                    break;
                }
            }

            if (!complete)
            {
                return outcome.Append(prefix == FrameReader.MaxVarintBytes ? $"{ErrorCode.MalformedFrame} at {at}" : $"more needed at {at}").ToString();
            }

            if (length > MaxFrameBytes)
            {
                return outcome.Append($"{ErrorCode.FrameTooLarge} at {at}").ToString();
            }

            if (at + prefix + (int)length > input.Length)
            {
                return outcome.Append($"more needed at {at}").ToString();
            }

            outcome.Append($"frame {at + prefix}+{length}; ");
            at += prefix + (int)length;
        }
    }
}
