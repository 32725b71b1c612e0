using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Relayd.Diagnostics.Prometheus;

/// <summary>
/// The Prometheus text exposition format 0.0.4: metric and label names, label-value and help escaping, and sample
/// values. Names follow Prometheus' conventions as OpenTelemetry maps them: dots become underscores, the unit is a
/// suffix in base units (<c>By</c> → <c>_bytes</c>, <c>ms</c> → <c>_seconds</c> with the values converted), and a
/// counter ends in <c>_total</c>; annotation units such as <c>{envelope}</c> add nothing.
/// </summary>
internal static class PrometheusText
{
    /// <summary>The Content-Type of a scrape's answer.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>The Prometheus name of <paramref name="instrument"/>; <paramref name="divisor"/> converts its values to the name's unit.</summary>
    public static string MetricName(Instrument instrument, out double divisor)
    {
        (string? suffix, divisor) = instrument.Unit switch
        {
            "By" => ("bytes", 1.0),
            "s" => ("seconds", 1.0),
            "ms" => ("seconds", 1000.0),
            "us" => ("seconds", 1_000_000.0),
            _ => ((string?)null, 1.0),
        };
        var name = new StringBuilder(instrument.Name.Length + 16);
        foreach (char c in instrument.Name)
        {
            name.Append(IsNameChar(c, name.Length == 0) ? c : '_');
        }

        if (suffix is not null && !name.ToString().EndsWith("_" + suffix, StringComparison.Ordinal))
        {
            name.Append('_').Append(suffix);
        }

        if (IsCounter(instrument))
        {
            name.Append("_total");
        }

        return name.ToString();
    }

    /// <summary>"counter", "gauge" or "histogram": what the TYPE line says of <paramref name="instrument"/>.</summary>
    public static string TypeOf(Instrument instrument) =>
        IsCounter(instrument) ? "counter"
        : IsHistogram(instrument) ? "histogram"
        : "gauge"; // up-down counters and gauges, observable or not

    public static bool IsCounter(Instrument instrument) =>
        instrument.GetType() is { IsGenericType: true } type
        && type.GetGenericTypeDefinition() is var definition
        && (definition == typeof(Counter<>) || definition == typeof(ObservableCounter<>));

    public static bool IsHistogram(Instrument instrument) =>
        instrument.GetType() is { IsGenericType: true } type && type.GetGenericTypeDefinition() == typeof(Histogram<>);

    /// <summary>A tag key as a label name: <c>[a-zA-Z_][a-zA-Z0-9_]*</c>, other characters replaced by '_'.</summary>
    public static string LabelName(string key)
    {
        var name = new StringBuilder(key.Length);
        foreach (char c in key)
        {
            name.Append(c != ':' && IsNameChar(c, name.Length == 0) ? c : '_');
        }

        return name.Length == 0 ? "_" : name.ToString();
    }

    /// <summary>Appends <paramref name="value"/> escaped for a label value: backslash, double quote and line feed.</summary>
    public static StringBuilder AppendLabelValue(StringBuilder text, string value)
    {
        foreach (char c in value)
        {
            _ = c switch
            {
                '\\' => text.Append("\\\\"),
                '"' => text.Append("\\\""),
                '\n' => text.Append("\\n"),
                _ => text.Append(c),
            };
        }

        return text;
    }

    /// <summary>Appends <paramref name="help"/> escaped for a HELP line: backslash and line feed.</summary>
    public static StringBuilder AppendHelp(StringBuilder text, string help)
    {
        foreach (char c in help)
        {
            _ = c switch
            {
                '\\' => text.Append("\\\\"),
                '\n' => text.Append("\\n"),
                _ => text.Append(c),
            };
        }

        return text;
    }

    /// <summary>A sample value as Prometheus (Go's ParseFloat) reads it: shortest round-trip form, <c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>.</summary>
    public static string Value(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);

    // Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*.
    private static bool IsNameChar(char c, bool first) =>
        c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' or ':' || (!first && c is >= '0' and <= '9');
}
