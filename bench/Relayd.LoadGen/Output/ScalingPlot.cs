using System.Globalization;
using ScottPlot;

namespace Relayd.LoadGen.Output;

/// <summary>
/// Scaling curves from bench/scaling.sh's CSV (series, value, acked msg/s, relay µs per message): one chart per series
/// (partners, connections, users, message size), acked msg/s on the left axis and relay CPU per message on the right,
/// the series' values evenly spaced (they grow by factors).
/// </summary>
public static class ScalingPlot
{
    public static void Save(string csvPath, string outputPrefix)
    {
        var rows = File.ReadAllLines(csvPath)
            .Skip(1)
            .Where(l => l.Length > 0)
            .Select(l => l.Split(','))
            .Select(f => (Series: f[0], Value: f[1], PerSecond: double.Parse(f[2], CultureInfo.InvariantCulture), MicrosPerMessage: double.Parse(f[3], CultureInfo.InvariantCulture)))
            .ToList();
        foreach (var series in rows.GroupBy(r => r.Series))
        {
            var points = series.ToList();
            double[] xs = [.. Enumerable.Range(0, points.Count).Select(i => (double)i)];
            var plot = new Plot();
            var rate = plot.Add.Scatter(xs, [.. points.Select(p => p.PerSecond)]);
            rate.LegendText = "acked msg/s (left)";
            var cpu = plot.Add.Scatter(xs, [.. points.Select(p => p.MicrosPerMessage)]);
            cpu.LegendText = "relay CPU µs/msg (right)";
            cpu.Axes.YAxis = plot.Axes.Right;
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs, [.. points.Select(p => p.Value)]);
            plot.Axes.Bottom.Label.Text = series.Key;
            plot.Axes.Left.Label.Text = "acked msg/s";
            plot.Axes.Right.Label.Text = "relay CPU per message (µs)";
            plot.Axes.SetLimitsY(0, points.Max(p => p.PerSecond) * 1.15, plot.Axes.Left);
            plot.Axes.SetLimitsY(0, points.Max(p => p.MicrosPerMessage) * 1.15, plot.Axes.Right);
            plot.Title($"relayd, durable, mutual TLS: by {series.Key}");
            plot.ShowLegend(Alignment.LowerLeft);
            plot.SaveSvg($"{outputPrefix}-{series.Key}.svg", 800, 450);
            plot.SavePng($"{outputPrefix}-{series.Key}.png", 800, 450);
        }
    }
}
