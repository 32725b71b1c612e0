using System.Globalization;

namespace Relayd.Support.Trace;

/// <summary>
/// One segment file of the trace. The one being written is <c>NNNNNNNNNN.open</c>; a closed one is renamed
/// <c>NNNNNNNNNN-FIRSTMS-LASTMS-EVENTS.trace</c>, so retention and the size cap need no reading (its newest event's
/// time and how many events deleting it drops are in its name).
/// </summary>
internal sealed record TraceSegment(string Path, long Sequence, long FirstMs, long LastMs, long Events, long Bytes, bool IsOpen)
{
    public const string OpenSuffix = ".open";
    public const string ClosedSuffix = ".trace";

    public static string OpenName(long sequence) => sequence.ToString("D10", CultureInfo.InvariantCulture) + OpenSuffix;

    public static string ClosedName(long sequence, long firstMs, long lastMs, long events) =>
        string.Create(CultureInfo.InvariantCulture, $"{sequence:D10}-{firstMs}-{lastMs}-{events}{ClosedSuffix}");

    /// <summary>The segments in <paramref name="directory"/>, oldest first; files of other names are left alone.</summary>
    public static List<TraceSegment> List(string directory)
    {
        var segments = new List<TraceSegment>();
        foreach (FileInfo file in new DirectoryInfo(directory).EnumerateFiles("*"))
        {
            if (Parse(file) is { } segment)
            {
                segments.Add(segment);
            }
        }

        segments.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        return segments;
    }

    private static TraceSegment? Parse(FileInfo file)
    {
        string name = file.Name;
        long length;
        try
        {
            length = file.Length;
        }
        catch (FileNotFoundException)
        {
            return null; // deleted by retention meanwhile
        }

        if (name.EndsWith(OpenSuffix, StringComparison.Ordinal))
        {
            return long.TryParse(name.AsSpan(0, name.Length - OpenSuffix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long open)
                ? new TraceSegment(file.FullName, open, 0, 0, 0, length, IsOpen: true) : null;
        }

        if (!name.EndsWith(ClosedSuffix, StringComparison.Ordinal))
        {
            return null;
        }

        string[] parts = name[..^ClosedSuffix.Length].Split('-');
        return parts.Length == 4
            && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long sequence)
            && long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long first)
            && long.TryParse(parts[2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long last)
            && long.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out long events)
            ? new TraceSegment(file.FullName, sequence, first, last, events, length, IsOpen: false)
            : null;
    }
}
