using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Security;
using Relayd.Tests.Diagnostics.Prometheus;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Systemd;

/// <summary>
/// The packaged relay operated as an admin does, in the real systemd of <see cref="SystemdContainer"/>: structured
/// journal fields, <c>systemctl reload</c> (partners and certificates swapped with sessions kept; a broken file
/// refused), the watchdog restarting a stopped process without losing what was acked, and the metrics endpoint.
/// </summary>
[Collection(nameof(SystemdCollection))]
public sealed class OperatedRelayTests(SystemdContainer container)
{
    [Fact]
    public async Task A_refused_envelope_is_in_the_journal_with_its_partner_error_code_event_and_message_id()
    {
        container.SkipUnlessAvailable();
        await using RelayClient alpha = await container.ConnectAsync("alpha", receipts: false);
        Envelope forged = Envelopes.New("alpha", "beta");
        forged.SenderPartner = "beta";
        await Envelopes.RefusedAsync(() => alpha.SendAsync(forged));

        IReadOnlyDictionary<string, string>? entry = null;
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (entry is null && DateTime.UtcNow < deadline)
        {
            // The filter an admin types: journalctl -u relayd RELAYD_PARTNER=alpha.
            IReadOnlyList<IReadOnlyDictionary<string, string>> entries = await container.JournalAsync("relayd", "RELAYD_PARTNER=alpha");
            entry = entries.FirstOrDefault(e => e.GetValueOrDefault("RELAYD_EVENT") == "EnvelopeRefused" && e.GetValueOrDefault("RELAYD_ERROR_CODE") == "SENDER_MISMATCH");
            if (entry is null)
            {
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }
        }

        Assert.NotNull(entry);
        Assert.Equal("SENDER_MISMATCH", entry["RELAYD_ERROR_CODE"]);
        Assert.Equal("3fcf2aa5da8c5c62af0df36fdf9bd4f2", entry["MESSAGE_ID"]);
        Assert.Equal("4", entry["PRIORITY"]);
        Assert.Equal("relayd", entry["SYSLOG_IDENTIFIER"]);
        Assert.Equal("relayd.service", entry["_SYSTEMD_UNIT"]);
        Assert.Contains("refused with SENDER_MISMATCH", entry["MESSAGE"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Systemctl_reload_adds_a_partner_and_rotates_the_certificate_while_sessions_stay_and_a_broken_file_is_refused()
    {
        container.SkipUnlessAvailable();
        int pid = await container.MainPidAsync();
        await using RelayClient alpha = await container.ConnectAsync("alpha", receipts: false);
        await using RelayClient beta = await container.ConnectAsync("beta", receipts: false);

        // A new server certificate from the same CA, and partner delta approved.
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 rotated = CertificateFactory.IssueServer(container.Pki.Ca, ["localhost"], [IPAddress.Loopback], now.AddDays(-1), now.AddYears(1));
        string pem = Path.Combine(container.Pki.Directory, "rotated.crt");
        string key = Path.Combine(container.Pki.Directory, "rotated.key");
        CertificateFactory.WritePem(rotated, pem, key);
        await container.WriteFileAsync("/etc/relayd/tls/rotated.crt", await File.ReadAllTextAsync(pem));
        await container.WriteFileAsync("/etc/relayd/tls/rotated.key", await File.ReadAllTextAsync(key));
        await container.RequireAsync("sh", "-c", "chgrp relayd /etc/relayd/tls/rotated.* && chmod 0640 /etc/relayd/tls/rotated.*");
        string config = container.Config(extraPartners: "\n[[partners]]\nid = \"delta\"\n")
            .Replace("/etc/relayd/tls/server.crt", "/etc/relayd/tls/rotated.crt", StringComparison.Ordinal)
            .Replace("/etc/relayd/tls/server.key", "/etc/relayd/tls/rotated.key", StringComparison.Ordinal);
        await container.WriteFileAsync(SystemdContainer.ConfigPath, config);
        string beforeReload = await container.JournalCursorAsync();
        await container.RequireAsync("systemctl", "reload", "relayd");
        await WaitForJournalAsync("(SIGHUP): partners +delta; certificate and partner trust reloaded", beforeReload);

        // Same process, sessions kept: alpha's envelope reaches beta on the connections opened before the reload.
        Assert.Equal(pid, await container.MainPidAsync());
        Envelope envelope = Envelopes.New("alpha", "beta");
        await Envelopes.AcceptedAsync(alpha, envelope);
        Assert.Contains(envelope.MessageId, await SystemdContainer.ReceiveAsync(beta, [envelope], seconds: 30));

        // The new partner connects; a new connection is served the rotated certificate.
        await using (RelayClient delta = await container.ConnectAsync("delta", receipts: false))
        {
            await Envelopes.AcceptedAsync(delta, Envelopes.New("delta", "beta"));
        }

        await using (RawPartnerConnection probe = await RawPartnerConnection.ConnectAsync(container.Port, container.Pki.Partner("gamma"), container.Pki.Ca))
        {
            Assert.Equal(rotated.Thumbprint, Assert.IsType<X509Certificate2>(probe.Stream.RemoteCertificate, exactMatch: false).Thumbprint);
        }

        // A broken file: refused with its line and key, the relay keeps running on what it had.
        await container.WriteFileAsync(SystemdContainer.ConfigPath, config.Replace("shutdown_timeout_ms = 3000", "shutdown_timeout_ms = \"soon\"", StringComparison.Ordinal));
        string beforeBroken = await container.JournalCursorAsync();
        await container.RequireAsync("systemctl", "reload", "relayd");
        await WaitForJournalAsync("limits.shutdown_timeout_ms: expected an integer", beforeBroken);
        await WaitForJournalAsync("Configuration reload (SIGHUP) refused, the running configuration stays", beforeBroken);
        Assert.Equal("active", await container.ShowAsync("ActiveState"));
        Assert.Equal(pid, await container.MainPidAsync());
        await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta"));

        // Both reloads are counted on the metrics endpoint.
        var metrics = new IPEndPoint(IPAddress.Loopback, container.MetricsPort);
        PrometheusScrape scrape = await MetricsHttp.ScrapeUntilAsync(metrics, s => s.Value("relayd_reloads_total", ("result", "refused")) >= 1);
        Assert.True(scrape.Value("relayd_reloads_total", ("result", "applied")) >= 1);

        await container.WriteFileAsync(SystemdContainer.ConfigPath, config); // leave a valid file for the next restart
    }

    [Fact]
    public async Task A_stopped_relay_misses_its_watchdog_pings_and_systemd_restarts_it_without_losing_an_acked_envelope()
    {
        container.SkipUnlessAvailable();
        const int Count = 30;
        TimeSpan watchdog = SystemdTimeSpan(await container.ShowAsync("WatchdogUSec"));
        Assert.True(watchdog > TimeSpan.Zero, "the unit has no WatchdogSec=");
        int pidBefore = await container.MainPidAsync();

        await container.OptInAsync("gamma"); // gamma is away while alpha sends; its users opted in before
        var acked = new List<Envelope>();
        await using (RelayClient alpha = await container.ConnectAsync("alpha", receipts: false))
        {
            for (int i = 0; i < Count; i++)
            {
                Envelope envelope = Envelopes.New("alpha", "gamma");
                await Envelopes.AcceptedAsync(alpha, envelope);
                acked.Add(envelope);
            }
        }

        // SIGSTOP: alive but making no progress, as a hung process is. Only the watchdog can notice.
        var stopped = Stopwatch.StartNew();
        await container.RequireAsync("kill", "-STOP", pidBefore.ToString(CultureInfo.InvariantCulture));
        int pidAfter = await container.WaitForActiveAsync(notPid: pidBefore, seconds: 120);
        stopped.Stop();
        TestContext.Current.TestOutputHelper?.WriteLine($"SIGSTOP at pid {pidBefore}: active again as pid {pidAfter} after {stopped.Elapsed.TotalSeconds:F1} s (WatchdogSec={watchdog.TotalSeconds} s)");

        Assert.True(stopped.Elapsed <= 2 * watchdog, $"restarted {stopped.Elapsed.TotalSeconds:F1} s after SIGSTOP, more than twice WatchdogSec={watchdog.TotalSeconds} s");
        string result = await container.ShowAsync("Result");
        // systemd's own line under the unit: "relayd.service: Watchdog timeout (limit 10s)!"
        IReadOnlyList<IReadOnlyDictionary<string, string>> journal = await container.JournalAsync();
        Assert.Contains(journal, e => e.GetValueOrDefault("MESSAGE", "").Contains("Watchdog timeout", StringComparison.Ordinal));
        await using RelayClient gamma = await container.ConnectAsync("gamma", receipts: false);
        HashSet<ByteString> arrived = await SystemdContainer.ReceiveAsync(gamma, acked, seconds: 60);
        Assert.True(acked.All(e => arrived.Contains(e.MessageId)), $"{acked.Count(e => !arrived.Contains(e.MessageId))} of {Count} acked envelopes lost (pid {pidBefore} -> {pidAfter}, result {result})");
    }

    [Fact]
    public async Task The_metrics_endpoint_answers_curl_in_the_container_with_text_that_parses()
    {
        container.SkipUnlessAvailable();
        await using (RelayClient alpha = await container.ConnectAsync("alpha", receipts: false))
        {
            await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta"));
        }

        string text = await container.RequireAsync("curl", "-fsS", $"http://127.0.0.1:{container.MetricsPort}/metrics");
        PrometheusScrape scrape = PrometheusTextParser.Parse(text);
        Assert.True(scrape.Value("relayd_envelopes_accepted_total", ("partner", "alpha")) >= 1);
        Assert.Equal("ok", (await container.RequireAsync("curl", "-fsS", $"http://127.0.0.1:{container.MetricsPort}/readyz")).Trim());
        Assert.Equal("ok", (await container.RequireAsync("curl", "-fsS", $"http://127.0.0.1:{container.MetricsPort}/healthz")).Trim());
    }

    [Fact]
    public async Task Relayd_ctl_shows_and_acts_on_the_running_relay_and_refuses_a_user_who_may_not()
    {
        container.SkipUnlessAvailable();
        await using RelayClient alpha = await container.ConnectAsync("alpha", receipts: false);
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(container.Port, container.Pki.Partner("beta"), container.Pki.Ca);
        await beta.SendHelloAsync();
        Assert.NotNull((await beta.ReadFrameAsync())?.Welcome);

        string status = await container.RequireAsync("relayd", "ctl", "status");
        Assert.Contains($"config:   {SystemdContainer.ConfigPath}", status, StringComparison.Ordinal);
        Assert.Contains("draining: no", status, StringComparison.Ordinal);
        using (var json = System.Text.Json.JsonDocument.Parse(await container.RequireAsync("relayd", "ctl", "--json", "status")))
        {
            Assert.Equal(await container.MainPidAsync(), json.RootElement.GetProperty("status").GetProperty("pid").GetInt32());
        }

        Assert.Matches(@"(?m)^alpha\s+1\s", await container.RequireAsync("relayd", "ctl", "partners"));
        string sessions = await container.RequireAsync("relayd", "ctl", "sessions");
        Assert.Contains("alpha", sessions, StringComparison.Ordinal);
        Assert.Contains("raw-test", sessions, StringComparison.Ordinal);

        // suspend: beta's session gets GoAway PARTNER_SUSPENDED, envelopes to beta are refused; resume: accepted again.
        await container.RequireAsync("relayd", "ctl", "suspend", "beta");
        Frame? goAway;
        try
        {
            // Deliveries left for beta by other tests may come first.
            while ((goAway = await beta.ReadFrameAsync()) is { GoAway: null })
            {
            }
        }
        finally
        {
            await container.ExecAsync("relayd", "ctl", "resume", "beta");
        }

        Assert.Equal(ErrorCode.PartnerSuspended, goAway?.GoAway?.Code);
        await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta")); // resumed
        string beforeGamma = await container.JournalCursorAsync();
        await container.RequireAsync("relayd", "ctl", "suspend", "gamma");
        try
        {
            Assert.Equal(ErrorCode.PartnerSuspended, (await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New("alpha", "gamma")))).Code);
        }
        finally
        {
            await container.RequireAsync("relayd", "ctl", "resume", "gamma");
        }

        await WaitForJournalAsync("uid=0", beforeGamma); // this test's ctl commands, not an earlier test's

        // Someone who is neither root nor relayd nor in its group: the file mode refuses them, and so does SO_PEERCRED
        // when the mode is widened.
        SystemdContainer.CommandResult nobody = await container.ExecAsync("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "relayd", "ctl", "status");
        Assert.NotEqual(0, nobody.ExitCode);
        Assert.Contains("relayd ctl: cannot connect to /run/relayd/control.sock: permission denied", nobody.StandardError, StringComparison.Ordinal);
        await container.RequireAsync("chmod", "0666", "/run/relayd/control.sock");
        nobody = await container.ExecAsync("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "relayd", "ctl", "status");
        Assert.True(nobody.ExitCode == 77, $"exit {nobody.ExitCode}: {nobody.StandardError}");
        Assert.Contains("permission_denied: uid 65534", nobody.StandardError, StringComparison.Ordinal);

        // drain: new envelopes and sessions refused with DRAINING; the sessions there stay.
        int pid = await container.MainPidAsync();
        await container.RequireAsync("relayd", "ctl", "drain");
        try
        {
            Assert.Equal(ErrorCode.Draining, (await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New("alpha", "gamma")))).Code);
            Assert.Contains("draining: yes", await container.RequireAsync("relayd", "ctl", "status"), StringComparison.Ordinal);
        }
        finally
        {
            // Drain lasts until a restart: leave a serving relay for the next test.
            await container.RequireAsync("systemctl", "restart", "relayd");
            await container.WaitForActiveAsync(notPid: pid);
        }
    }

    /// <summary>A time span as <c>systemctl show</c> prints it: "10s", "500ms", "1min 30s".</summary>
    private static TimeSpan SystemdTimeSpan(string text)
    {
        TimeSpan total = TimeSpan.Zero;
        foreach (System.Text.RegularExpressions.Match part in System.Text.RegularExpressions.Regex.Matches(text, @"(\d+)(us|ms|s|min|h)\b"))
        {
            long n = long.Parse(part.Groups[1].Value, CultureInfo.InvariantCulture);
            total += part.Groups[2].Value switch
            {
                "us" => TimeSpan.FromMicroseconds(n),
                "ms" => TimeSpan.FromMilliseconds(n),
                "s" => TimeSpan.FromSeconds(n),
                "min" => TimeSpan.FromMinutes(n),
                _ => TimeSpan.FromHours(n),
            };
        }

        return total;
    }

    /// <summary>Waits for a journal entry of relayd.service containing <paramref name="text"/>, logged after <paramref name="cursor"/> (<see cref="SystemdContainer.JournalCursorAsync"/>): not one an earlier test left.</summary>
    private async Task WaitForJournalAsync(string text, string cursor)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        string[] after = cursor.Length == 0 ? [] : ["--after-cursor=" + cursor];
        while (true)
        {
            IReadOnlyList<IReadOnlyDictionary<string, string>> entries = await container.JournalAsync(SystemdContainer.Unit, after);
            if (entries.Any(e => e.GetValueOrDefault("MESSAGE", "").Contains(text, StringComparison.Ordinal)))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"no journal entry of relayd.service contains '{text}'; last entries:\n" + string.Join('\n', entries.TakeLast(30).Select(e => e.GetValueOrDefault("MESSAGE"))));
            }

            await Task.Delay(200, TestContext.Current.CancellationToken);
        }
    }
}
