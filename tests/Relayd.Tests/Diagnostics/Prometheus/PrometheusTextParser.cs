using System.Globalization;
using System.Text.RegularExpressions;

namespace Relayd.Tests.Diagnostics.Prometheus;

/// <summary>One sample line: its metric name, labels and value.</summary>
internal sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    /// <summary>Whether every label of <paramref name="labels"/> has that value here (others may be there too).</summary>
    public bool Has(params (string Name, string Value)[] labels) =>
        labels.All(l => Labels.TryGetValue(l.Name, out string? value) && value == l.Value);
}

/// <summary>One metric family: the TYPE and HELP lines and the samples after them.</summary>
internal sealed record PrometheusFamily(string Name, string Type, string? Help, List<PrometheusSample> Samples);

/// <summary>A parsed scrape, with look-ups by metric name and labels.</summary>
internal sealed class PrometheusScrape(Dictionary<string, PrometheusFamily> families)
{
    public IReadOnlyDictionary<string, PrometheusFamily> Families => families;

    public IEnumerable<PrometheusSample> Samples => families.Values.SelectMany(f => f.Samples);

    /// <summary>The one sample named <paramref name="name"/> with those labels; fails when there is none or more than one.</summary>
    public double Value(string name, params (string Name, string Value)[] labels)
    {
        PrometheusSample[] found = [.. Samples.Where(s => s.Name == name && s.Has(labels))];
        return found.Length == 1 ? found[0].Value
            : throw new Xunit.Sdk.XunitException($"expected one sample {name}{{{string.Join(",", labels.Select(l => $"{l.Name}=\"{l.Value}\""))}}}, found {found.Length}: {string.Join("; ", found.Select(s => s.ToString()))}");
    }

    /// <summary>The sample's value, or 0 when there is none (a labelled series not recorded yet).</summary>
    public double ValueOrZero(string name, params (string Name, string Value)[] labels) =>
        Samples.Where(s => s.Name == name && s.Has(labels)).Select(s => s.Value).SingleOrDefault();
}

/// <summary>
/// A strict reader of the Prometheus text exposition format 0.0.4, written for the tests (no served package parses
/// it): every line must be a HELP, TYPE or other comment, or a sample; names, label syntax and escapes, and float
/// values are checked; a family's TYPE comes before its samples and its samples are together; no series appears
/// twice; counters end in <c>_total</c> and are not negative; a histogram's buckets are ascending in <c>le</c>,
/// monotone in count, end with <c>+Inf</c>, and <c>+Inf</c> equals <c>_count</c>. Throws
/// <see cref="FormatException"/> naming the line on the first breach.
/// </summary>
internal static partial class PrometheusTextParser
{
    public static PrometheusScrape Parse(string text)
    {
        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("the exposition must end with a line feed");
        }

        var families = new Dictionary<string, PrometheusFamily>(StringComparer.Ordinal);
        var helps = new Dictionary<string, string>(StringComparer.Ordinal);
        var seenSeries = new HashSet<string>(StringComparer.Ordinal);
        PrometheusFamily? current = null;
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length - 1; i++)
        {
            string line = lines[i];
            int number = i + 1;
            if (line.StartsWith('#'))
            {
                Match comment = DescriptorLine().Match(line);
                if (!comment.Success)
                {
                    if (line.StartsWith("# HELP", StringComparison.Ordinal) || line.StartsWith("# TYPE", StringComparison.Ordinal))
                    {
                        throw new FormatException($"line {number}: malformed descriptor: {line}");
                    }

                    continue; // any other comment
                }

                string name = comment.Groups["name"].Value;
                string rest = comment.Groups["rest"].Value;
                if (comment.Groups["kind"].Value == "HELP")
                {
                    if (!helps.TryAdd(name, Unescape(rest, number, allowQuote: false)))
                    {
                        throw new FormatException($"line {number}: second HELP for {name}");
                    }

                    if (families.TryGetValue(name, out PrometheusFamily? described))
                    {
                        families[name] = described with { Help = helps[name] };
                    }

                    continue;
                }

                if (rest is not ("counter" or "gauge" or "histogram" or "summary" or "untyped"))
                {
                    throw new FormatException($"line {number}: unknown type '{rest}'");
                }

                if (families.ContainsKey(name))
                {
                    throw new FormatException($"line {number}: second TYPE for {name}");
                }

                if (rest == "counter" && !name.EndsWith("_total", StringComparison.Ordinal))
                {
                    throw new FormatException($"line {number}: counter {name} does not end in _total");
                }

                current = new PrometheusFamily(name, rest, helps.GetValueOrDefault(name), []);
                families[name] = current;
                continue;
            }

            if (line.Length == 0)
            {
                throw new FormatException($"line {number}: empty line");
            }

            PrometheusSample sample = ParseSample(line, number);
            string family = FamilyOf(sample.Name, current);
            if (current is null || family != current.Name)
            {
                throw new FormatException($"line {number}: sample {sample.Name} is not of the family whose TYPE came last ({current?.Name ?? "none"}): a family's samples follow its TYPE, together");
            }

            string identity = sample.Name + "{" + string.Join(",", sample.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "}";
            if (!seenSeries.Add(identity))
            {
                throw new FormatException($"line {number}: series {identity} appears twice");
            }

            if (current.Type == "counter" && (sample.Value < 0 || double.IsNaN(sample.Value)))
            {
                throw new FormatException($"line {number}: counter {sample.Name} is {sample.Value}");
            }

            current.Samples.Add(sample);
        }

        foreach (PrometheusFamily family in families.Values.Where(f => f.Type == "histogram"))
        {
            CheckHistogram(family);
        }

        return new PrometheusScrape(families);
    }

    private static string FamilyOf(string sampleName, PrometheusFamily? current)
    {
        if (current is { Type: "histogram" or "summary" })
        {
            foreach (string suffix in (string[])["_bucket", "_sum", "_count"])
            {
                if (sampleName == current.Name + suffix)
                {
                    return current.Name;
                }
            }
        }

        return sampleName;
    }

    private static void CheckHistogram(PrometheusFamily family)
    {
        foreach (IGrouping<string, PrometheusSample> series in family.Samples.GroupBy(s => string.Join(",", s.Labels.Where(l => l.Key != "le").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"))))
        {
            string where = $"histogram {family.Name}{{{series.Key}}}";
            List<PrometheusSample> buckets = [.. series.Where(s => s.Name == family.Name + "_bucket")];
            PrometheusSample count = series.SingleOrDefault(s => s.Name == family.Name + "_count") ?? throw new FormatException($"{where}: no _count");
            _ = series.SingleOrDefault(s => s.Name == family.Name + "_sum") ?? throw new FormatException($"{where}: no _sum");
            if (buckets.Count == 0)
            {
                throw new FormatException($"{where}: no buckets");
            }

            double previousBound = double.NegativeInfinity;
            double previousCount = 0;
            foreach (PrometheusSample bucket in buckets)
            {
                double bound = bucket.Labels.TryGetValue("le", out string? le) ? ParseValue(le, 0) : throw new FormatException($"{where}: a bucket without le");
                if (bound <= previousBound)
                {
                    throw new FormatException($"{where}: bucket le={le} does not follow {previousBound}");
                }

                if (bucket.Value < previousCount)
                {
                    throw new FormatException($"{where}: bucket le={le} counts {bucket.Value}, fewer than the one before ({previousCount})");
                }

                previousBound = bound;
                previousCount = bucket.Value;
            }

            if (!double.IsPositiveInfinity(previousBound))
            {
                throw new FormatException($"{where}: the last bucket is not le=\"+Inf\"");
            }

            if (previousCount != count.Value)
            {
                throw new FormatException($"{where}: +Inf bucket {previousCount} but _count {count.Value}");
            }
        }
    }

    private static PrometheusSample ParseSample(string line, int number)
    {
        Match name = MetricName().Match(line);
        if (!name.Success)
        {
            throw new FormatException($"line {number}: no metric name at the start: {line}");
        }

        int at = name.Length;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (at < line.Length && line[at] == '{')
        {
            at++;
            while (true)
            {
                if (at < line.Length && line[at] == '}')
                {
                    at++;
                    break;
                }

                Match label = LabelName().Match(line, at);
                if (!label.Success || label.Index != at)
                {
                    throw new FormatException($"line {number}: bad label name at column {at + 1}: {line}");
                }

                at += label.Length;
                if (at + 1 >= line.Length || line[at] != '=' || line[at + 1] != '"')
                {
                    throw new FormatException($"line {number}: expected =\" after label {label.Value}: {line}");
                }

                at += 2;
                int start = at;
                while (at < line.Length && line[at] != '"')
                {
                    at += line[at] == '\\' ? 2 : 1;
                }

                if (at >= line.Length)
                {
                    throw new FormatException($"line {number}: unterminated label value: {line}");
                }

                if (!labels.TryAdd(label.Value, Unescape(line[start..at], number, allowQuote: true)))
                {
                    throw new FormatException($"line {number}: label {label.Value} twice: {line}");
                }

                at++; // the closing quote
                if (at < line.Length && line[at] == ',')
                {
                    at++;
                }
                else if (at < line.Length && line[at] != '}')
                {
                    throw new FormatException($"line {number}: expected , or }} after a label value: {line}");
                }
            }
        }

        if (at >= line.Length || line[at] != ' ')
        {
            throw new FormatException($"line {number}: expected a space before the value: {line}");
        }

        string[] fields = line[(at + 1)..].Split(' ');
        if (fields.Length is < 1 or > 2 || (fields.Length == 2 && !long.TryParse(fields[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
        {
            throw new FormatException($"line {number}: expected a value and at most a timestamp (ms): {line}");
        }

        return new PrometheusSample(name.Value, labels, ParseValue(fields[0], number));
    }

    private static double ParseValue(string text, int number) => text switch
    {
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ when FloatValue().IsMatch(text) => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        _ => throw new FormatException($"line {number}: '{text}' is not a float"),
    };

    private static string Unescape(string text, int number, bool allowQuote)
    {
        var result = new System.Text.StringBuilder(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != '\\')
            {
                result.Append(text[i]);
                continue;
            }

            char next = i + 1 < text.Length ? text[++i] : throw new FormatException($"line {number}: a lone backslash ends '{text}'");
            result.Append(next switch
            {
                '\\' => '\\',
                'n' => '\n',
                '"' when allowQuote => '"',
                _ => throw new FormatException($"line {number}: unknown escape \\{next} in '{text}'"),
            });
        }

        return result.ToString();
    }

    [GeneratedRegex(@"^# (?<kind>HELP|TYPE) (?<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?<rest>.*)$")]
    private static partial Regex DescriptorLine();

    [GeneratedRegex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"[a-zA-Z_][a-zA-Z0-9_]*")]
    private static partial Regex LabelName();

    [GeneratedRegex(@"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")]
    private static partial Regex FloatValue();
}
