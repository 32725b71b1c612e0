using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Relayd.LoadGen.Output;

/// <summary>The results of one run in the three forms people read: a console table, JSON and CSV.</summary>
public sealed class Report(Workload workload, IReadOnlyList<RunResult> results, string machine)
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public string ToTable()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"workload: {Describe(workload)}; machine: {machine}");
        text.AppendLine("system                  acked/s  deliv/s    MiB/s  ack ms p50/p90/p99/p99.9/max          e2e ms p50/p99/max        refused  rss MiB  cpu  µs/msg srv/cli  relay x");
        RunResult? relay = results.FirstOrDefault(r => r.System == "relayd");
        foreach (RunResult r in results)
        {
            string ratio = relay is null || r.AckedPerSecond == 0 ? "-" : (relay.AckedPerSecond / r.AckedPerSecond).ToString("0.00", Invariant);
            text.AppendLine(string.Create(Invariant,
                $"{r.System,-22} {r.AckedPerSecond,9:N0} {r.DeliveredPerSecond,8:N0} {r.AckedMiBPerSecond,8:N1}  {Latencies(r.AckLatency),-36} {EndToEnd(r),-24} {r.Refused,7:N0} {Rss(r),8} {Cpu(r),4} {PerMessage(r),15} {ratio,8}"));
            text.AppendLine(CultureInfo.InvariantCulture, $"{"",-22} durability: {r.Durability}{Errors(r)}");
            if (r.SendLag.TotalCount > 0)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{"",-22} generator send lag ms p50/p99/max: {string.Join('/', EndToEndPercentiles.Select(p => RunResult.Milliseconds(r.SendLag, p).ToString("0.00", Invariant)))} (included in ack latency: late against its own schedule)");
            }
            if (r.ClientGc is { } gc)
            {
                text.AppendLine(string.Create(Invariant, $"{"",-22} client GC: {r.ClientAllocatedBytesPerMessage:0} B allocated per message, {gc.Gen0} collections (gen1 {gc.Gen1}, gen2 {gc.Gen2}), paused {gc.PauseMilliseconds:0.0} ms in all"));
            }

            if (r.Check is { } check)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"{"",-22} {check.Describe()}");
            }
        }

        return text.ToString();
    }

    public string ToJson() => JsonSerializer.Serialize(
        new
        {
            workload = new
            {
                messageBytes = workload.MessageBytes,
                count = workload.Count,
                durationSeconds = workload.Duration.TotalSeconds,
                mode = workload.OpenLoop ? "open-loop" : "closed-loop",
                window = workload.Window,
                rate = workload.Rate,
                paceMicroseconds = workload.PaceQuantum.TotalMicroseconds,
                connections = workload.Connections,
                users = workload.Users,
                warmupSeconds = workload.Warmup.TotalSeconds,
            },
            machine,
            results = results.Select(r => new
            {
                system = r.System,
                durability = r.Durability,
                seconds = r.Seconds,
                sent = r.Sent,
                acked = r.Acked,
                refused = r.Refused,
                delivered = r.Delivered,
                measuredAcked = r.MeasuredAcked,
                measuredDelivered = r.MeasuredDelivered,
                ackedPerSecond = r.AckedPerSecond,
                deliveredPerSecond = r.DeliveredPerSecond,
                ackedMiBPerSecond = r.AckedMiBPerSecond,
                ackLatencyMs = LatencyObject(r.AckLatency),
                endToEndLatencyMs = LatencyObject(r.EndToEndLatency),
                endToEndSampling = LoadDriver.EndToEndSampling,
                sendLagMs = r.SendLag.TotalCount == 0 ? null : LatencyObject(r.SendLag),
                errorsByCode = r.ErrorsByCode,
                serverPeakRssBytes = r.ServerPeakRssBytes,
                serverCpuCores = r.ServerCpuCores,
                clientCpuCores = r.ClientCpuCores,
                serverCpuMicrosecondsPerMessage = r.ServerCpuMicrosecondsPerMessage,
                clientCpuMicrosecondsPerMessage = r.ClientCpuMicrosecondsPerMessage,
                clientAllocatedBytesPerMessage = r.ClientAllocatedBytesPerMessage,
                clientGc = r.ClientGc is not { } g ? null : new { allocatedBytes = g.AllocatedBytes, pauseMs = g.PauseMilliseconds, gen0 = g.Gen0, gen1 = g.Gen1, gen2 = g.Gen2 },
                check = r.Check is not { } c ? null : new
                {
                    tool = c.Tool,
                    command = c.Command,
                    toolPerSecond = c.ToolPerSecond,
                    harnessPerSecond = c.HarnessPerSecond,
                    ratio = c.Ratio,
                    withinTolerance = c.WithinTolerance,
                },
            }),
        },
        Indented);

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly double[] AckPercentiles = [50, 90, 99, 99.9, 100];
    private static readonly double[] EndToEndPercentiles = [50, 99, 100];

    public string ToCsv()
    {
        var csv = new StringBuilder("system,durability,seconds,sent,acked,refused,delivered,acked_per_s,delivered_per_s,mib_per_s,ack_p50_ms,ack_p90_ms,ack_p99_ms,ack_p999_ms,ack_max_ms,e2e_p50_ms,e2e_p99_ms,e2e_max_ms,server_peak_rss_bytes,server_cpu_cores,client_cpu_cores\n");
        foreach (RunResult r in results)
        {
            csv.AppendLine(string.Join(',',
                r.System, '"' + r.Durability.Replace("\"", "\"\"", StringComparison.Ordinal) + '"', F(r.Seconds), r.Sent, r.Acked, r.Refused, r.Delivered, F(r.AckedPerSecond), F(r.DeliveredPerSecond), F(r.AckedMiBPerSecond),
                F(RunResult.Milliseconds(r.AckLatency, 50)), F(RunResult.Milliseconds(r.AckLatency, 90)), F(RunResult.Milliseconds(r.AckLatency, 99)), F(RunResult.Milliseconds(r.AckLatency, 99.9)), F(RunResult.Milliseconds(r.AckLatency, 100)),
                F(RunResult.Milliseconds(r.EndToEndLatency, 50)), F(RunResult.Milliseconds(r.EndToEndLatency, 99)), F(RunResult.Milliseconds(r.EndToEndLatency, 100)),
                r.ServerPeakRssBytes?.ToString(Invariant) ?? "", r.ServerCpuCores is { } cpu ? F(cpu) : "", r.ClientCpuCores is { } clientCpu ? F(clientCpu) : ""));
        }

        return csv.ToString();
    }

    public static string Describe(Workload w) =>
        string.Create(Invariant, $"{w.MessageBytes} B messages, {(w.OpenLoop ? $"open loop at {w.Rate:N0}/s (paced every {w.PaceQuantum.TotalMicroseconds:0} µs)" : $"closed loop, window {w.Window}")}, {w.Connections} connection(s), {w.Users} users, ")
        + (w.Count > 0 ? string.Create(Invariant, $"{w.Count:N0} messages") : string.Create(Invariant, $"{w.Duration.TotalSeconds:0.#} s")) + string.Create(Invariant, $" after {w.Warmup.TotalSeconds:0.#} s warm-up");

    private static Dictionary<string, double?> LatencyObject(HdrHistogram.LongHistogram h) => new()
    {
        ["p50"] = Nullable(RunResult.Milliseconds(h, 50)),
        ["p90"] = Nullable(RunResult.Milliseconds(h, 90)),
        ["p99"] = Nullable(RunResult.Milliseconds(h, 99)),
        ["p99.9"] = Nullable(RunResult.Milliseconds(h, 99.9)),
        ["max"] = Nullable(RunResult.Milliseconds(h, 100)),
    };

    private static double? Nullable(double value) => double.IsNaN(value) ? null : Math.Round(value, 3);

    private static string Latencies(HdrHistogram.LongHistogram h) => h.TotalCount == 0 ? "-" :
        string.Join('/', AckPercentiles.Select(p => RunResult.Milliseconds(h, p).ToString("0.00", Invariant)));

    private static string EndToEnd(RunResult r) => r.EndToEndLatency.TotalCount == 0 ? "-" :
        string.Join('/', EndToEndPercentiles.Select(p => RunResult.Milliseconds(r.EndToEndLatency, p).ToString("0.00", Invariant)));

    private static string Rss(RunResult r) => r.ServerPeakRssBytes is { } b ? (b / (1024.0 * 1024)).ToString("0", Invariant) : "-";

    private static string Cpu(RunResult r) => r.ServerCpuCores is { } c ? c.ToString("0.00", Invariant) : "-";

    private static string PerMessage(RunResult r) =>
        string.Create(Invariant, $"{(r.ServerCpuMicrosecondsPerMessage is { } server ? server.ToString("0.0", Invariant) : "-")}/{(r.ClientCpuMicrosecondsPerMessage is { } client ? client.ToString("0.0", Invariant) : "-")}");

    private static string Errors(RunResult r) => r.ErrorsByCode.Count == 0 ? "" : "; errors: " + string.Join(", ", r.ErrorsByCode.Select(e => $"{e.Key}={e.Value}"));

    private static string F(double value) => double.IsNaN(value) ? "" : value.ToString("0.###", Invariant);
}
