using System.Net;
using System.Net.Sockets;
using Relayd.Protocol;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Diagnostics.Prometheus;

/// <summary>The metrics endpoint of the real daemon (<c>relayd run</c> with a <c>[metrics]</c> table): scraped, and refused a busy port.</summary>
public sealed class MetricsProcessTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public MetricsProcessTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task The_daemon_serves_metrics_that_count_what_it_was_sent()
    {
        int metricsPort = RelaydConfigFile.FreePort();
        await using var relay = new RelaydProcess(_pki, tables: $"[metrics]\nlisten = \"127.0.0.1:{metricsPort}\"\n");
        await relay.StartAsync();
        var metrics = new IPEndPoint(IPAddress.Loopback, metricsPort);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        const int Sent = 4;

        for (int i = 0; i < Sent; i++)
        {
            await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        }

        PrometheusScrape scrape = await MetricsHttp.ScrapeAsync(metrics);
        MetricsHttp.Answer ready = await MetricsHttp.GetAsync(metrics, "/readyz");
        MetricsHttp.Answer healthy = await MetricsHttp.GetAsync(metrics, "/healthz");

        Assert.Equal(Sent, scrape.Value("relayd_envelopes_accepted_total", ("partner", "alpha")));
        Assert.Equal(Sent, scrape.Value("relayd_backlog_envelopes", ("partner", "beta"), ("held", "memory")));
        Assert.Equal(1, scrape.Value("relayd_sessions_active", ("partner", "alpha")));
        Assert.Equal((HttpStatusCode.OK, "ok\n"), (ready.Status, ready.Body));
        Assert.Equal((HttpStatusCode.OK, "ok\n"), (healthy.Status, healthy.Body));
        Assert.Contains($"Metrics endpoint on http://127.0.0.1:{metricsPort}", relay.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_metrics_port_in_use_is_a_one_line_refusal_to_start_with_exit_code_69()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int busy = ((IPEndPoint)taken.LocalEndpoint).Port;
        int port = RelaydConfigFile.FreePort();
        string config = RelaydConfigFile.Write(_pki, "metrics-busy", port,
            $"[wal]\ndir = \"{Path.Combine(_pki.Directory, $"wal-metrics-busy-{port}")}\"\nreserve_bytes = 0\n\n[metrics]\nlisten = \"127.0.0.1:{busy}\"\n");

        ExternalProcess.Result result = await ExternalProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "relayd.dll"), "run", "--config", config], timeoutSeconds: 60);

        string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 69));
        Assert.Equal($"relayd: refusing to start: cannot listen for metrics on 127.0.0.1:{busy} (metrics.listen): address already in use", line);
        using var probe = new TcpClient();
        await Assert.ThrowsAnyAsync<SocketException>(() => probe.ConnectAsync(IPAddress.Loopback, port, TestContext.Current.CancellationToken).AsTask()); // the partner port was never opened
    }
}
