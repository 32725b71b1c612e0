using System.Buffers;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Fuzz.Oracles;

/// <summary>What the hand readers' oracles share: the generated parser as the reference, and field comparisons.</summary>
internal static class WireAgreement
{
    /// <summary>
    /// Parses <paramref name="input"/> with the generated <see cref="Frame.Parser"/>: what a recipient's protobuf
    /// library sees. A frame the hand reader accepted must parse, or the relay forwards what its peers cannot read.
    /// </summary>
    public static Frame ParseAccepted(string reader, byte[] input)
    {
        try
        {
            return Frame.Parser.ParseFrom(input);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or ArgumentException)
        {
            // ArgumentException: a DecoderFallbackException for a string that is not UTF-8.
            throw new OracleViolationException($"{reader} accepted a frame Google.Protobuf rejects: {ex.GetType().Name}: {ex.Message}", ex);
        }
    }

    /// <summary>Throws unless the hand reader's bytes for <paramref name="field"/> are the generated parser's.</summary>
    public static void Same(string reader, string field, ReadOnlySpan<byte> read, ReadOnlySpan<byte> parsed)
    {
        if (!read.SequenceEqual(parsed))
        {
            throw new OracleViolationException($"{reader} read {field} as {Convert.ToHexString(read)}, Google.Protobuf as {Convert.ToHexString(parsed)}");
        }
    }

    /// <summary>Throws unless the hand reader's value for <paramref name="field"/> is the generated parser's.</summary>
    public static void Same<T>(string reader, string field, T read, T parsed)
        where T : IEquatable<T>
    {
        if (!read.Equals(parsed))
        {
            throw new OracleViolationException($"{reader} read {field} as {read}, Google.Protobuf as {parsed}");
        }
    }

    public static void Same(string reader, string field, in ReadOnlySequence<byte> read, ByteString parsed) =>
        Same(reader, field, read.ToArray(), parsed.Span);

    /// <summary>
    /// Reads <paramref name="input"/> once per <see cref="FuzzTargets.SegmentSizes"/> segmentation with
    /// <paramref name="readOnce"/> (which returns what the reader made of it, after checking any accepted frame
    /// against the reference), MALFORMED_FRAME counting as an outcome too; throws unless every segmentation agrees.
    /// </summary>
    public static void AcrossSegmentations(string reader, byte[] input, Func<ReadOnlySequence<byte>, string> readOnce)
    {
        string? first = null;
        foreach (int segmentSize in FuzzTargets.SegmentSizes)
        {
            string outcome;
            try
            {
                outcome = readOnce(SegmentedSequence.Of(input, segmentSize));
            }
            catch (RelayException ex) when (ex.Code == ErrorCode.MalformedFrame)
            {
                outcome = ex.Message;
            }

            if (first is null)
            {
                first = outcome;
            }
            else if (first != outcome)
            {
                throw new OracleViolationException($"{reader} read one segment as {first} but segments of {segmentSize} as {outcome}");
            }
        }
    }
}
