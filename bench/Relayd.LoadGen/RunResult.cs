using HdrHistogram;

namespace Relayd.LoadGen;

/// <summary>What one system did with one workload.</summary>
public sealed class RunResult
{
    public required string System { get; init; }

    public required string Durability { get; init; }

    public required double Seconds { get; init; }

    public required long Sent { get; init; }

    public required long Acked { get; init; }

    public required long Refused { get; init; }

    public required long Delivered { get; init; }

    public required int MessageBytes { get; init; }

    /// <summary>Acks for messages sent after the warm-up: what the rates are computed from.</summary>
    public required long MeasuredAcked { get; init; }

    /// <summary>Deliveries that arrived after the warm-up.</summary>
    public required long MeasuredDelivered { get; init; }

    public required LongHistogram AckLatency { get; init; }

    public required LongHistogram EndToEndLatency { get; init; }

    /// <summary>Open loop: how late the generator got round to each send against its schedule (empty when closed
    /// loop). Ack latency counts from the intended time, so this part of it is the generator's, not the relay's.</summary>
    public required LongHistogram SendLag { get; init; }

    public required IReadOnlyDictionary<string, long> ErrorsByCode { get; init; }

    /// <summary>Peak resident set of the server process, bytes; null when unknown.</summary>
    public long? ServerPeakRssBytes { get; init; }

    /// <summary>Server CPU time during the measurement divided by wall time (1.0 = one core busy); null when unknown.</summary>
    public double? ServerCpuCores { get; init; }

    /// <summary>
    /// The load generator's own CPU over the same time (its senders and receivers, on the partner client library for
    /// relayd): what the client side costs, and what it takes from the server on a shared machine.
    /// </summary>
    public double? ClientCpuCores { get; init; }

    /// <summary>The load generator's garbage collector over the same time as <see cref="ClientCpuCores"/>; null for a run that did not measure it.</summary>
    public ClientGc? ClientGc { get; init; }

    /// <summary>Bytes the load generator allocated per acknowledged message (the client library and the generator itself).</summary>
    public double? ClientAllocatedBytesPerMessage => ClientGc is { } gc && Acked > 0 ? gc.AllocatedBytes / (double)Acked : null;

    /// <summary>Server CPU per acknowledged message, microseconds; null when unknown.</summary>
    public double? ServerCpuMicrosecondsPerMessage => PerMessage(ServerCpuCores);

    /// <summary>Client CPU per acknowledged message, microseconds; null when unknown.</summary>
    public double? ClientCpuMicrosecondsPerMessage => PerMessage(ClientCpuCores);

    /// <summary>The peer's own tool against the same server, when it has one (<see cref="IToolChecked"/>); set after the run.</summary>
    public ToolCheck? Check { get; set; }

    public double AckedPerSecond => MeasuredAcked / Seconds;

    private double? PerMessage(double? cores) => cores is { } c && AckedPerSecond > 0 ? c / AckedPerSecond * 1e6 : null;

    public double DeliveredPerSecond => MeasuredDelivered / Seconds;

    public double AckedMiBPerSecond => MeasuredAcked * (double)MessageBytes / Seconds / (1024 * 1024);

    public static readonly double[] Percentiles = [50, 90, 99, 99.9];

    /// <summary>Latency in milliseconds at <paramref name="percentile"/> (100 = max); NaN when nothing was recorded.</summary>
    public static double Milliseconds(LongHistogram histogram, double percentile) =>
        histogram.TotalCount == 0 ? double.NaN
        : (percentile >= 100 ? histogram.GetMaxValue() : histogram.GetValueAtPercentile(percentile)) / (double)TimeSpan.TicksPerMillisecond;
}
