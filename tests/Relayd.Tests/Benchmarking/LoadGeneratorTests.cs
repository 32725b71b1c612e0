using System.Diagnostics;
using System.Text.Json;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Benchmarking;

/// <summary>The load generator as benchmarkers run it: a real relay process, real TLS, machine-readable results.</summary>
public sealed class LoadGeneratorTests
{
    [Fact]
    public async Task A_short_closed_loop_run_writes_JSON_whose_counts_add_up()
    {
        string output = Path.Combine(Path.GetTempPath(), $"loadgen-{Guid.NewGuid():N}.json");
        try
        {
            ExternalProcess.Result run = await RunLoadGenAsync("--duration", "2", "--warmup", "0.5", "--window", "256", "--json", output);

            Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
            using JsonDocument json = JsonDocument.Parse(await File.ReadAllTextAsync(output, TestContext.Current.CancellationToken));
            JsonElement workload = json.RootElement.GetProperty("workload");
            JsonElement relay = Assert.Single(json.RootElement.GetProperty("results").EnumerateArray());
            Assert.Equal("closed-loop", workload.GetProperty("mode").GetString());
            Assert.Equal("relayd", relay.GetProperty("system").GetString());
            Assert.Contains("fdatasync", relay.GetProperty("durability").GetString(), StringComparison.Ordinal);
            long sent = relay.GetProperty("sent").GetInt64();
            long acked = relay.GetProperty("acked").GetInt64();
            long refused = relay.GetProperty("refused").GetInt64();
            Assert.True(acked > 1000, $"only {acked} acked");
            Assert.Equal(sent, acked + refused);
            Assert.Equal(acked, relay.GetProperty("delivered").GetInt64());
            Assert.True(relay.GetProperty("ackedPerSecond").GetDouble() > 0);
            foreach (string percentile in (string[])["p50", "p90", "p99", "p99.9", "max"])
            {
                Assert.True(relay.GetProperty("ackLatencyMs").GetProperty(percentile).GetDouble() > 0, percentile);
            }

            Assert.True(relay.GetProperty("endToEndLatencyMs").GetProperty("p50").GetDouble() > 0);
            Assert.True(relay.GetProperty("serverPeakRssBytes").GetInt64() > 0);
            Assert.True(relay.GetProperty("serverCpuCores").GetDouble() > 0);
            Assert.True(relay.GetProperty("clientCpuCores").GetDouble() > 0); // the client library's own cost
            Assert.True(relay.GetProperty("clientCpuMicrosecondsPerMessage").GetDouble() > 0);
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public async Task An_open_loop_run_sends_at_the_requested_rate()
    {
        ExternalProcess.Result run = await RunLoadGenAsync("--rate", "2000", "--duration", "2", "--warmup", "0", "--json", "-");

        Assert.True(run.ExitCode == 0, run.StandardError);
        using JsonDocument json = JsonDocument.Parse(run.StandardOutput);
        JsonElement relay = json.RootElement.GetProperty("results")[0];
        Assert.Equal("open-loop", json.RootElement.GetProperty("workload").GetProperty("mode").GetString());
        Assert.InRange(relay.GetProperty("sent").GetInt64(), 3600, 4400);
        Assert.Equal(relay.GetProperty("sent").GetInt64(), relay.GetProperty("acked").GetInt64() + relay.GetProperty("refused").GetInt64());
        Assert.Equal(1000, json.RootElement.GetProperty("workload").GetProperty("paceMicroseconds").GetDouble());
        Assert.True(relay.GetProperty("sendLagMs").GetProperty("p50").GetDouble() >= 0); // the generator's own lateness, reported apart
    }

    [Fact]
    public async Task A_relayd_executable_that_does_not_exist_is_refused_in_one_line()
    {
        ExternalProcess.Result run = await RunLoadGenAsync("--relayd", "/nonexistent/relayd", "--count", "10");

        Assert.Equal(1, run.ExitCode);
        Assert.Contains("--relayd /nonexistent/relayd: no such file", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_report_says_how_durable_each_acknowledgement_was()
    {
        ExternalProcess.Result durable = await RunLoadGenAsync("--count", "2000", "--warmup", "0");
        ExternalProcess.Result unsynced = await RunLoadGenAsync("--count", "2000", "--warmup", "0", "--no-sync");

        Assert.True(durable.ExitCode == 0, durable.StandardError);
        Assert.True(unsynced.ExitCode == 0, unsynced.StandardError);
        Assert.Contains("acked after write-ahead log group commit with fdatasync", durable.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("without fdatasync", unsynced.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_load_generator_killed_with_SIGKILL_leaves_no_server_of_its_run_behind()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string argument in (string[])[Path.Combine(AppContext.BaseDirectory, "Relayd.LoadGen.dll"), "--duration", "300", "--warmup", "0", "--window", "16"])
        {
            start.ArgumentList.Add(argument);
        }

        using Process loadGen = Process.Start(start) ?? throw new InvalidOperationException("could not start the load generator");
        int[] servers = [];
        try
        {
            // The relay it started is up once the run begins: its relayd dev is one of the load generator's descendants.
            DateTime deadline = DateTime.UtcNow.AddSeconds(60);
            while (servers.Length == 0 && DateTime.UtcNow < deadline && !loadGen.HasExited)
            {
                servers = [.. Descendants(loadGen.Id).Where(pid => CommandLine(pid).Split(' ')[0].EndsWith("dotnet", StringComparison.Ordinal) && CommandLine(pid).Contains("relayd.dll dev ", StringComparison.Ordinal))];
                await Task.Delay(100, TestContext.Current.CancellationToken);
            }

            Assert.True(servers.Length == 1, $"the load generator's relayd was not found among its descendants ({string.Join(", ", Descendants(loadGen.Id).Select(CommandLine))})");
        }
        finally
        {
            loadGen.Kill(); // SIGKILL: no handler of the load generator runs
            await loadGen.WaitForExitAsync(TestContext.Current.CancellationToken);
        }

        DateTime gone = DateTime.UtcNow.AddSeconds(30);
        while (servers.Any(IsRunning) && DateTime.UtcNow < gone)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        int[] left = [.. servers.Where(IsRunning)];
        string names = string.Join(", ", left.Select(pid => $"{pid} {CommandLine(pid)}"));
        foreach (int pid in left)
        {
            Process.GetProcessById(pid).Kill(); // do not leave it to the next test
        }

        Assert.True(left.Length == 0, $"still running 30 s after the load generator was killed: {names}");
    }

    // Processes whose parent chain leads to root (from /proc/PID/stat's ppid field).
    private static List<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (string directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out int pid))
            {
                try
                {
                    string stat = File.ReadAllText(Path.Combine(directory, "stat"));
                    string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    parents[pid] = int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture);
                }
                catch (IOException)
                {
                    // It ended meanwhile.
                }
            }
        }

        var found = new List<int>();
        foreach (int pid in parents.Keys)
        {
            for (int p = pid; parents.TryGetValue(p, out int parent); p = parent)
            {
                if (parent == root)
                {
                    found.Add(pid);
                    break;
                }
            }
        }

        return found;
    }

    private static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
    }

    // A zombie (exited, not yet reaped by its new parent) is not running.
    private static bool IsRunning(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Backlog_mode_fills_an_offline_partners_queue_and_drains_every_envelope_when_it_connects()
    {
        ExternalProcess.Result run = await RunLoadGenAsync("--backlog", "3000", "--size", "256");

        Assert.True(run.ExitCode == 0, run.StandardOutput + run.StandardError);
        Assert.Matches(@"backlog: 3,000 x 256 B envelopes partner-0 -> partner-1 \(offline\), 64 users: filled at [\d,]+ msg/s", run.StandardOutput);
        Assert.Matches(@"drained by partner-1 after it connected: 3,000 delivered and acked at [\d,]+ msg/s", run.StandardOutput);
        Assert.Matches(@"relay during the drain: peak RSS \d+ MiB, CPU [\d.]+ cores", run.StandardOutput);
    }

    [Fact]
    public async Task Plot_scaling_draws_one_chart_per_series_and_a_broken_csv_is_one_line()
    {
        string dir = Directory.CreateTempSubdirectory("relayd-scaling-").FullName;
        try
        {
            string csv = Path.Combine(dir, "scaling.csv");
            await File.WriteAllTextAsync(csv, "series,value,acked_per_second,relay_us_per_message,relay_rss_mib\npartners,2,150000,6.2,319\npartners,8,130000,6.7,350\nsize,256,198000,4.8,331\n");
            ExternalProcess.Result drawn = await RunLoadGenAsync("plot-scaling", csv, Path.Combine(dir, "scaling"));
            Assert.True(drawn.ExitCode == 0, drawn.StandardError);
            foreach (string chart in (string[])["scaling-partners.svg", "scaling-partners.png", "scaling-size.svg", "scaling-size.png"])
            {
                Assert.True(new FileInfo(Path.Combine(dir, chart)).Length > 1000, chart);
            }

            Assert.Contains("acked msg/s", await File.ReadAllTextAsync(Path.Combine(dir, "scaling-partners.svg")), StringComparison.Ordinal);

            await File.WriteAllTextAsync(csv, "series,value,acked_per_second,relay_us_per_message\npartners,2,fast,6.2\n");
            ExternalProcess.Result broken = await RunLoadGenAsync("plot-scaling", csv, Path.Combine(dir, "broken"));
            Assert.Equal(1, broken.ExitCode);
            Assert.StartsWith("relayd-loadgen: plot-scaling: ", Assert.Single(broken.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static Task<ExternalProcess.Result> RunLoadGenAsync(params string[] arguments) =>
        ExternalProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "Relayd.LoadGen.dll"), .. arguments], timeoutSeconds: 120);
}
