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

    private static Task<ExternalProcess.Result> RunLoadGenAsync(params string[] arguments) =>
        ExternalProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "Relayd.LoadGen.dll"), .. arguments], timeoutSeconds: 120);
}
