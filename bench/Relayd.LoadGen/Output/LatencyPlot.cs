using ScottPlot;

namespace Relayd.LoadGen.Output;

/// <summary>Ack-latency percentile curves of every system in the run, one line each, on a log "nines" axis.</summary>
public static class LatencyPlot
{
    private static readonly double[] Percentiles = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99];

    public static void Save(IReadOnlyList<RunResult> results, string title, string path)
    {
        var plot = new Plot();
        foreach (RunResult result in results.Where(r => r.AckLatency.TotalCount > 0))
        {
            double[] xs = [.. Percentiles.Select(Nines)];
            double[] ys = [.. Percentiles.Select(p => RunResult.Milliseconds(result.AckLatency, p == 0 ? 0.0001 : p))];
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = $"{result.System} ({result.AckedPerSecond:N0}/s)";
        }

        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            [.. Percentiles.Select(Nines)], [.. Percentiles.Select(p => p == 0 ? "min" : p + "%")]);
        plot.Axes.Bottom.Label.Text = "percentile";
        plot.Axes.Left.Label.Text = "ack latency (ms)";
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperLeft);
        if (path.EndsWith(".svg", StringComparison.OrdinalIgnoreCase))
        {
            plot.SaveSvg(path, 1000, 600);
        }
        else
        {
            plot.SavePng(path, 1000, 600);
        }
    }

    // 90% → 1, 99% → 2, 99.9% → 3 …: the usual way to draw latency percentiles.
    private static double Nines(double percentile) => percentile <= 0 ? 0 : -Math.Log10(1 - (percentile / 100));
}
