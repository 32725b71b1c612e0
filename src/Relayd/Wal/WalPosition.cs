namespace Relayd.Wal;

/// <summary>
/// A byte position in the log: a segment number and an offset inside that segment. Positions order by segment, then
/// offset. A record's position is where its header starts; its end position is just after its padding, which is
/// also where the next record in that segment starts (see <see cref="WriteAheadLog.EndOf"/>).
/// </summary>
/// <param name="Segment">The segment number (the hex digits in <c>wal-&lt;segment&gt;.log</c>). Segments start at 1.</param>
/// <param name="Offset">The byte offset inside the segment file, a multiple of 8.</param>
public readonly record struct WalPosition(ulong Segment, uint Offset) : IComparable<WalPosition>
{
    /// <summary>
    /// Packs the position into one <see cref="ulong"/> (segment in the high 32 bits, offset in the low 32 bits) that
    /// orders like the position itself. Segment numbers above <see cref="uint.MaxValue"/> cannot be packed (at 64 MiB
    /// per segment that is 256 PiB of log).
    /// </summary>
    public ulong ToUInt64() =>
        Segment <= uint.MaxValue
            ? (Segment << 32) | Offset
            : throw new OverflowException($"segment {Segment} does not fit in a packed WAL position");

    /// <summary>The position packed by <see cref="ToUInt64"/>.</summary>
    public static WalPosition FromUInt64(ulong packed) => new(packed >> 32, (uint)packed);

    /// <inheritdoc />
    public int CompareTo(WalPosition other) =>
        Segment != other.Segment ? Segment.CompareTo(other.Segment) : Offset.CompareTo(other.Offset);

    /// <summary>Whether <paramref name="left"/> comes before <paramref name="right"/>.</summary>
    public static bool operator <(WalPosition left, WalPosition right) => left.CompareTo(right) < 0;

    /// <summary>Whether <paramref name="left"/> comes after <paramref name="right"/>.</summary>
    public static bool operator >(WalPosition left, WalPosition right) => left.CompareTo(right) > 0;

    /// <summary>Whether <paramref name="left"/> comes before or is <paramref name="right"/>.</summary>
    public static bool operator <=(WalPosition left, WalPosition right) => left.CompareTo(right) <= 0;

    /// <summary>Whether <paramref name="left"/> comes after or is <paramref name="right"/>.</summary>
    public static bool operator >=(WalPosition left, WalPosition right) => left.CompareTo(right) >= 0;

    /// <summary>"segment:offset", e.g. <c>3:4096</c>.</summary>
    public override string ToString() => $"{Segment}:{Offset}";
}
