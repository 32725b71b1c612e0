using System.Buffers;

namespace Relayd.Tests.Infrastructure;

/// <summary>Builds multi-segment sequences, as a pipe hands them out, for code that must work across segment boundaries.</summary>
internal static class SegmentedSequence
{
    /// <summary>Splits <paramref name="bytes"/> into segments of <paramref name="chunkSize"/> bytes (the last may be shorter).</summary>
    public static ReadOnlySequence<byte> Of(byte[] bytes, int chunkSize)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(bytes.AsMemory(0, Math.Min(chunkSize, bytes.Length)));
        Segment last = first;
        for (int at = chunkSize; at < bytes.Length; at += chunkSize)
        {
            last = last.Append(bytes.AsMemory(at, Math.Min(chunkSize, bytes.Length - at)));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory) => Memory = memory;

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory) { RunningIndex = RunningIndex + Memory.Length };
            Next = next;
            return next;
        }
    }
}
