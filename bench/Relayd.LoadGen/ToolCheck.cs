using System.Globalization;

namespace Relayd.LoadGen;

/// <summary>
/// A peer's own benchmark tool run against the same server, TLS, payload and pipeline depth as the harness, right
/// after the harness's run: the check that the harness drives the peer as well as its makers' tool does. A peer's
/// figures are only worth what its client in the harness is.
/// </summary>
/// <param name="Tool">The tool, e.g. "redis-benchmark".</param>
/// <param name="Command">What it ran (the payload elided), for the report.</param>
/// <param name="ToolPerSecond">What the tool reached, operations per second.</param>
/// <param name="HarnessPerSecond">What the harness reached with the same peer in the same run.</param>
public sealed record ToolCheck(string Tool, string Command, double ToolPerSecond, double HarnessPerSecond)
{
    /// <summary>The harness's figure may be at most this much below the tool's.</summary>
    public const double Tolerance = 0.20;

    public double Ratio => ToolPerSecond > 0 ? HarnessPerSecond / ToolPerSecond : double.NaN;

    public bool WithinTolerance => Ratio >= 1 - Tolerance;

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"check: {Tool} {ToolPerSecond:N0}/s, harness {HarnessPerSecond:N0}/s = {Ratio:0.00}x: {(WithinTolerance ? "within" : "NOT within")} {Tolerance:P0} ({Command})");
}

/// <summary>A target whose peer ships a benchmark tool the harness can be checked against (<see cref="ToolCheck"/>).</summary>
public interface IToolChecked
{
    /// <summary>Runs the tool against the running server; null when the tool is not installed (the report says so).</summary>
    Task<ToolCheck?> CheckAsync(Workload workload, double harnessPerSecond, CancellationToken cancellationToken);
}
