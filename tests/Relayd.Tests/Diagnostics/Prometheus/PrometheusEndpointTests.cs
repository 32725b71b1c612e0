using System.Diagnostics;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Diagnostics.Prometheus;
using Relayd.Hosting;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Diagnostics.Prometheus;

/// <summary>
/// The opt-in metrics endpoint of a real relay, over real sockets: what /metrics says after real traffic (read by the
/// tests' strict text-format parser, and by promtool when installed), what /healthz and /readyz answer and when, and
/// how the endpoint treats requests that are too big, too slow or not for it.
/// </summary>
public sealed class PrometheusEndpointTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public PrometheusEndpointTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_scrape_counts_the_envelopes_accepted_delivered_and_refused_by_partner_and_code()
    {
        await using TestRelay relay = StartWithMetrics();
        IPEndPoint metrics = relay.Server.MetricsEndPoint;
        PrometheusScrape before = await MetricsHttp.ScrapeAsync(metrics);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        const int Sent = 7;
        const int Size = 2000;

        for (int i = 0; i < Sent; i++)
        {
            await alpha.SendAsync(Envelopes.New("alpha", "beta", ciphertext: Envelopes.RandomCiphertext(Size))).Within();
        }

        for (int i = 0; i < 3; i++)
        {
            await alpha.SendAsync(Envelopes.New("alpha", "gamma")).Within(); // gamma is away: its backlog
        }

        await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New(from: "gamma", to: "beta")));
        for (int i = 0; i < Sent; i++)
        {
            await beta.AcknowledgeAsync(await beta.Deliveries.ReadAsync().Within());
        }

        // Settling the deliveries commits too, and frees their queue entries as it goes: wait until the relay is quiet,
        // so the figures are of one moment.
        PrometheusScrape after = await MetricsHttp.ScrapeUntilAsync(metrics, s => s.ValueOrZero("relayd_envelopes_delivered_total", ("partner", "beta")) >= Sent
            && s.ValueOrZero("relayd_backlog_envelopes", ("partner", "beta"), ("held", "memory")) == 0
            && s.Value("relayd_wal_commit_duration_seconds_count") == s.Value("relayd_wal_commit_batch_size_bytes_count")
            && s.Value("relayd_wal_bytes_total") == s.Value("relayd_wal_commit_batch_size_bytes_sum"));

        Assert.Equal(0, before.ValueOrZero("relayd_envelopes_accepted_total", ("partner", "alpha")));
        Assert.Equal(Sent + 3, after.Value("relayd_envelopes_accepted_total", ("partner", "alpha")));
        Assert.Equal(Sent, after.Value("relayd_envelopes_delivered_total", ("partner", "beta")));
        Assert.Equal(1, after.Value("relayd_envelopes_refused_total", ("partner", "alpha"), ("code", "SENDER_MISMATCH")));
        Assert.Equal(Sent + 3, after.Value("relayd_acks_sent_total"));
        Assert.Equal(Sent + 3, after.Value("relayd_ack_latency_seconds_count"));
        Assert.InRange(after.Value("relayd_ack_latency_seconds_sum"), 1e-7, 60);
        Assert.Equal(1, after.Value("relayd_sessions_active", ("partner", "alpha")));
        Assert.Equal(1, after.Value("relayd_sessions_active", ("partner", "beta")));
        Assert.Equal(3, after.Value("relayd_backlog_envelopes", ("partner", "gamma"), ("held", "memory")));
        Assert.Equal(0, after.Value("relayd_backlog_envelopes", ("partner", "gamma"), ("held", "log_only")));
        Assert.Equal(0, after.Value("relayd_backlog_envelopes", ("partner", "beta"), ("held", "memory")));
        Assert.InRange(after.Value("relayd_network_received_bytes_total"), Sent * Size, double.MaxValue);
        Assert.InRange(after.Value("relayd_network_sent_bytes_total"), Sent * Size, double.MaxValue);
        Assert.InRange(after.Value("relayd_wal_bytes_total"), Sent * Size, double.MaxValue);
        Assert.InRange(after.Value("relayd_wal_commit_duration_seconds_count"), 1, double.MaxValue);
        Assert.Equal(after.Value("relayd_wal_commit_duration_seconds_count"), after.Value("relayd_wal_commit_batch_size_bytes_count")); // one of each per group commit
        Assert.Equal(after.Value("relayd_wal_bytes_total"), after.Value("relayd_wal_commit_batch_size_bytes_sum"));
        Assert.InRange(after.Value("relayd_wal_sync_duration_seconds_count"), 1, double.MaxValue);
        Assert.InRange(after.Value("relayd_wal_size_bytes"), 1, double.MaxValue);
        Assert.Equal(0, after.Value("relayd_media_bytes_total"));
        Assert.Equal("gauge", after.Families["relayd_media_transfers_open"].Type);
        Assert.Equal("gauge", after.Families["relayd_media_spool_bytes"].Type);
        Assert.Equal("histogram", after.Families["relayd_ack_latency_seconds"].Type);
        Assert.Equal("counter", after.Families["relayd_refusals_total"].Type);
    }

    [Fact]
    public async Task Reloads_are_counted_by_result()
    {
        await using TestRelay relay = StartWithMetrics();

        relay.Server.Metrics.RecordReload(applied: true);
        relay.Server.Metrics.RecordReload(applied: true);
        relay.Server.Metrics.RecordReload(applied: false);
        PrometheusScrape scrape = await MetricsHttp.ScrapeAsync(relay.Server.MetricsEndPoint);

        Assert.Equal(2, scrape.Value("relayd_reloads_total", ("result", "applied")));
        Assert.Equal(1, scrape.Value("relayd_reloads_total", ("result", "refused")));
    }

    [Fact]
    public async Task Media_in_flight_shows_as_an_open_transfer_of_its_sender()
    {
        await using TestRelay relay = StartWithMetrics();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new Relayd.LoadGen.Media.BlobStream(256 * 1024 + 5, seed: 9);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;

        await alpha.SendMediaAsync(open, blob).Within(60); // beta is away: spooled, held for it
        PrometheusScrape scrape = await MetricsHttp.ScrapeAsync(relay.Server.MetricsEndPoint);

        Assert.Equal((double)open.TotalSize, scrape.Value("relayd_media_bytes_total"));
        Assert.Equal((double)open.TotalSize, scrape.Value("relayd_media_spool_bytes", ("partner", "alpha")));
        Assert.Equal(0, scrape.Value("relayd_media_transfers_open", ("partner", "beta")));
    }

    [Fact]
    public async Task Readyz_is_503_until_the_listener_accepts_then_200_and_healthz_is_200_ok()
    {
        RelayOptions options = TestRelay.DefaultOptions(_pki);
        options.Metrics.Listen = "127.0.0.1:0";
        await using Relay relay = RelayServerFactory.Create(options, NullLogger.Instance);
        try
        {
            relay.Open(); // recovered, port bound, not accepting yet
            MetricsHttp.Answer starting = await MetricsHttp.GetAsync(relay.MetricsEndPoint, "/readyz");
            MetricsHttp.Answer alive = await MetricsHttp.GetAsync(relay.MetricsEndPoint, "/healthz");
            await relay.StartAsync(TestContext.Current.CancellationToken);
            MetricsHttp.Answer ready = await MetricsHttp.GetAsync(relay.MetricsEndPoint, "/readyz");

            Assert.Equal((HttpStatusCode.ServiceUnavailable, "starting: the partner listener does not accept yet\n"), (starting.Status, starting.Body));
            Assert.Equal((HttpStatusCode.OK, "ok\n"), (alive.Status, alive.Body));
            Assert.Equal((HttpStatusCode.OK, "ok\n"), (ready.Status, ready.Body));
        }
        finally
        {
            await relay.DisposeAsync();
            Directory.Delete(options.Storage.Directory, recursive: true);
        }
    }

    [Fact]
    public async Task Readyz_is_503_while_the_relay_drains()
    {
        await using TestRelay relay = StartWithMetrics(o => o.Limits.ShutdownTimeout = TimeSpan.FromSeconds(20));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await beta.SendHelloAsync();
        Assert.NotNull((await beta.ReadFrameAsync())?.Welcome);
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        Frame? delivery;
        do
        {
            delivery = await beta.ReadFrameAsync();
        }
        while (delivery is not null && delivery.BodyCase != Frame.BodyOneofCase.Deliver);

        Assert.NotNull(delivery); // beta holds it unacknowledged: the drain waits for it
        MetricsHttp.Answer serving = await MetricsHttp.GetAsync(relay.Server.MetricsEndPoint, "/readyz");
        Task stopping = relay.Server.StopAsync(TestContext.Current.CancellationToken);
        MetricsHttp.Answer draining = await MetricsHttp.GetAsync(relay.Server.MetricsEndPoint, "/readyz");
        bool stillDraining = !stopping.IsCompleted;
        await beta.DisposeAsync();
        await stopping.Within(60);

        Assert.Equal(HttpStatusCode.OK, serving.Status);
        Assert.True(stillDraining, "the relay finished draining before /readyz was asked");
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "draining: the relay is stopping and accepts no new sessions or envelopes\n"), (draining.Status, draining.Body));
    }

    [Fact]
    public async Task Healthz_is_503_naming_the_reserve_while_the_log_is_full()
    {
        await using TestRelay relay = StartWithMetrics();
        MetricsHttp.Answer healthy = await MetricsHttp.GetAsync(relay.Server.MetricsEndPoint, "/healthz");
        relay.Options.Storage.ReserveBytes = 1L << 40; // more free space than this machine has: the store is full at its next check

        relay.Server.Store.CheckSpace();
        MetricsHttp.Answer full = await MetricsHttp.GetAsync(relay.Server.MetricsEndPoint, "/healthz");

        Assert.Equal(HttpStatusCode.OK, healthy.Status);
        Assert.SkipUnless(relay.Server.Store.IsFull, "more than 1 TiB free here: the largest reserve cannot exceed it");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, full.Status);
        Assert.Contains("below wal.reserve_bytes", full.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_not_for_the_endpoint_are_refused_with_their_status()
    {
        await using TestRelay relay = StartWithMetrics();
        IPEndPoint metrics = relay.Server.MetricsEndPoint;

        (string notFound, _) = await MetricsHttp.RawAsync(metrics, "GET /varz HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
        (string post, _) = await MetricsHttp.RawAsync(metrics, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"u8.ToArray());
        (string garbage, _) = await MetricsHttp.RawAsync(metrics, "\x16\x03\x01 hello\r\n\r\n"u8.ToArray());
        (string head, _) = await MetricsHttp.RawAsync(metrics, "HEAD /metrics HTTP/1.0\r\n\r\n"u8.ToArray());

        Assert.StartsWith("HTTP/1.1 404 Not Found\r\n", notFound, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 405 Method Not Allowed\r\n", post, StringComparison.Ordinal);
        Assert.Contains("\r\nAllow: GET, HEAD\r\n", post, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", garbage, StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", head, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", head, StringComparison.Ordinal); // HEAD: the headers only
    }

    [Fact]
    public async Task An_oversized_request_head_gets_431_and_a_silent_client_is_closed_after_the_read_timeout()
    {
        await using TestRelay relay = StartWithMetrics();
        IPEndPoint metrics = relay.Server.MetricsEndPoint;
        byte[] huge = Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nX-Padding: " + new string('a', MetricsEndpoint.MaxRequestBytes));

        (string tooBig, _) = await MetricsHttp.RawAsync(metrics, huge[..MetricsEndpoint.MaxRequestBytes]);
        (string silent, TimeSpan waited) = await MetricsHttp.RawAsync(metrics, "GET /metrics HTTP/1.1\r\n"u8.ToArray(), seconds: 60);
        MetricsHttp.Answer stillServing = await MetricsHttp.GetAsync(metrics, "/healthz");

        Assert.StartsWith("HTTP/1.1 431 Request Header Fields Too Large\r\n", tooBig, StringComparison.Ordinal);
        Assert.Equal("", silent); // closed unanswered: no whole request came
        Assert.InRange(waited, MetricsEndpoint.RequestTimeout - TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(55));
        Assert.Equal(HttpStatusCode.OK, stillServing.Status);
    }

    [Fact]
    public async Task Promtool_finds_nothing_wrong_with_a_scrape_after_traffic()
    {
        string? promtool = FindOnPath("promtool");
        Assert.SkipWhen(promtool is null, "promtool is not installed (Debian: apt-get install --no-install-recommends prometheus); the strict parser of the other tests still checks the format");
        await using TestRelay relay = StartWithMetrics();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New(from: "gamma", to: "beta")));
        MetricsHttp.Answer scrape = await MetricsHttp.GetAsync(relay.Server.MetricsEndPoint, "/metrics");

        ExternalProcess.Result check = await ExternalProcess.RunAsync(promtool!, ["check", "metrics"], Encoding.UTF8.GetBytes(scrape.Body));

        Assert.True(check.ExitCode == 0 && check.StandardOutput.Trim().Length == 0 && check.StandardError.Trim().Length == 0,
            $"promtool check metrics: exit {check.ExitCode}\n{check.StandardOutput}\n{check.StandardError}\n--- scrape:\n{scrape.Body}");
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, program))
            .FirstOrDefault(File.Exists);

    private TestRelay StartWithMetrics(Action<RelayOptions>? configure = null) => TestRelay.Start(_pki, options =>
    {
        options.Metrics.Listen = "127.0.0.1:0";
        configure?.Invoke(options);
    });
}
