using System.Globalization;

namespace Relayd;

/// <summary>Durations as an operator reads them in a range message: "10 min", "1 day", "250 ms".</summary>
internal static class Durations
{
    public static string Describe(TimeSpan value) => value switch
    {
        { Ticks: 0 } => "0",
        _ when value.Ticks % TimeSpan.TicksPerDay == 0 => Plural(value.Ticks / TimeSpan.TicksPerDay, "day"),
        _ when value.Ticks % TimeSpan.TicksPerHour == 0 => Plural(value.Ticks / TimeSpan.TicksPerHour, "hour"),
        _ when value.Ticks % TimeSpan.TicksPerMinute == 0 => Invariant($"{value.Ticks / TimeSpan.TicksPerMinute} min"),
        _ when value.Ticks % TimeSpan.TicksPerSecond == 0 => Invariant($"{value.Ticks / TimeSpan.TicksPerSecond} s"),
        _ when value.Ticks % TimeSpan.TicksPerMillisecond == 0 => Invariant($"{value.Ticks / TimeSpan.TicksPerMillisecond} ms"),
        _ => Invariant($"{value.Ticks / TimeSpan.TicksPerMicrosecond} µs"),
    };

    private static string Plural(long count, string unit) => Invariant($"{count} {unit}{(count == 1 ? "" : "s")}");

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
