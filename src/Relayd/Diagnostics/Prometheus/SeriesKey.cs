namespace Relayd.Diagnostics.Prometheus;

/// <summary>
/// The tags of one measurement as a dictionary key, built on the stack: up to <see cref="MaxTags"/> tags, in key order
/// whatever order the call site gave them. Relayd's instruments carry at most two; a third is room to spare, and tags
/// beyond it are not told apart (<c>MetricsTests</c> checks no instrument records more).
/// </summary>
internal readonly struct SeriesKey : IEquatable<SeriesKey>
{
    public const int MaxTags = 3;

    private readonly KeyValuePair<string, object?> _tag0;
    private readonly KeyValuePair<string, object?> _tag1;
    private readonly KeyValuePair<string, object?> _tag2;

    public SeriesKey(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        Count = Math.Min(tags.Length, MaxTags);
        KeyValuePair<string, object?> a = Count > 0 ? tags[0] : default;
        KeyValuePair<string, object?> b = Count > 1 ? tags[1] : default;
        KeyValuePair<string, object?> c = Count > 2 ? tags[2] : default;
        // A three-element sorting network, by key: tags recorded in either order land in one series.
        if (Count > 1 && Before(b, a))
        {
            (a, b) = (b, a);
        }

        if (Count > 2 && Before(c, b))
        {
            (b, c) = (c, b);
            if (Before(b, a))
            {
                (a, b) = (b, a);
            }
        }

        _tag0 = a;
        _tag1 = b;
        _tag2 = c;
    }

    public int Count { get; }

    public KeyValuePair<string, object?> this[int index] => index switch
    {
        0 => _tag0,
        1 => _tag1,
        _ => _tag2,
    };

    public bool Equals(SeriesKey other) =>
        Count == other.Count && Same(_tag0, other._tag0) && Same(_tag1, other._tag1) && Same(_tag2, other._tag2);

    public override bool Equals(object? obj) => obj is SeriesKey other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Count, _tag0.Value, _tag1.Value, _tag2.Value);

    private static bool Before(KeyValuePair<string, object?> x, KeyValuePair<string, object?> y) => string.CompareOrdinal(x.Key, y.Key) < 0;

    // The tag strings are cached, so the reference check decides nearly always; Equals covers an equal copy.
    private static bool Same(KeyValuePair<string, object?> x, KeyValuePair<string, object?> y) =>
        string.Equals(x.Key, y.Key, StringComparison.Ordinal) && (ReferenceEquals(x.Value, y.Value) || Equals(x.Value, y.Value));
}
