using Relayd.Fuzz.Oracles;

// Outside the Oracles namespace: run.sh instruments that one, and this table is built before afl's shared memory is.
namespace Relayd.Fuzz;

/// <summary>
/// The fuzzed readers by name (the names of fuzz/corpus/ and fuzz/regressions/ subfolders). Each check takes one raw
/// input, swallows the reader's documented typed errors and throws on anything else.
/// </summary>
internal static class FuzzTargets
{
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> All = new Dictionary<string, Action<byte[]>>(StringComparer.Ordinal)
    {
        ["frame-reader"] = FrameReaderOracle.Check,
        ["envelope-header"] = EnvelopeHeaderOracle.Check,
        ["media-chunk"] = MediaChunkOracle.Check,
        ["config"] = ConfigLoaderOracle.Check,
    };

    /// <summary>Segment sizes every wire input is read with: one segment, then the worst case (one byte each), then an odd size.</summary>
    public static readonly int[] SegmentSizes = [int.MaxValue, 1, 7];
}
