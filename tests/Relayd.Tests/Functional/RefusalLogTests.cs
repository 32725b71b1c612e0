using Relayd.Protocol.V1;
using Relayd.Protocol;
using System.Diagnostics;
using System.Net;
using System.Security.Authentication;
using System.Text.RegularExpressions;
using Relayd.Tests.Infrastructure;
using Relayd.Transport;

namespace Relayd.Tests.Functional;

/// <summary>A flood of refused handshakes costs the journal a few lines per interval, with the count of what was not logged.</summary>
public sealed partial class RefusalLogTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public RefusalLogTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Repeated_handshakes_without_a_certificate_are_logged_once_per_interval_and_the_rest_summarized_with_their_count()
    {
        const int Attempts = 400;
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.RefusalLogInterval = TimeSpan.FromSeconds(2));
        var elapsed = Stopwatch.StartNew();
        for (int i = 0; i < Attempts; i++)
        {
            await HandshakeWithoutCertificateAsync(relay);
        }

        double seconds = elapsed.Elapsed.TotalSeconds;

        // Every refusal is accounted for, in full or in a summary (the last one comes at its interval's end).
        await WaitUntilAsync(() => Accounted(relay) >= Attempts, seconds: 20);
        int lines = FullLines(relay) + Summaries(relay).Count;
        TestContext.Current.TestOutputHelper?.WriteLine($"{Attempts} refusals in {seconds:F1} s: {lines} log lines");
        Assert.Equal(Attempts, Accounted(relay));
        Assert.True(lines <= 2 * ((int)(seconds / 2) + 2), $"{lines} lines for {Attempts} refusals in {seconds:F1} s");
        Assert.Contains(Summaries(relay), count => count > 1);
    }

    [Fact]
    public async Task Refused_envelopes_are_logged_as_a_warning_once_per_partner_and_code_then_summarized()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Limits.RefusalLogInterval = TimeSpan.FromSeconds(1));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        for (int i = 0; i < 5; i++)
        {
            Envelope forged = Envelopes.New("alpha", "beta");
            forged.SenderPartner = "beta";
            await Envelopes.RefusedAsync(() => alpha.SendAsync(forged));
        }

        await relay.WaitForLogAsync("Refused 4 more envelopes from partner alpha with SENDER_MISMATCH in the last");
        string[] full = [.. relay.Logs.Where(l => l.Contains("Envelope from partner alpha refused with SENDER_MISMATCH", StringComparison.Ordinal))];
        Assert.Single(full);
        Assert.StartsWith("[relay Warning 400]", full[0], StringComparison.Ordinal);
    }

    private static async Task HandshakeWithoutCertificateAsync(TestRelay relay)
    {
        try
        {
            await using RawPartnerConnection raw = await RawPartnerConnection.ConnectAsync(relay.Port, certificate: null, relay.Pki.Ca);
            await raw.ReadFrameAsync();
        }
        catch (Exception ex) when (ex is AuthenticationException or IOException)
        {
            // Refused: what the test wants.
        }
    }

    private static int FullLines(TestRelay relay) => relay.Logs.Count(l => l.Contains("refused during TLS: no client certificate", StringComparison.Ordinal));

    private static List<int> Summaries(TestRelay relay) =>
        [.. relay.Logs.Select(l => SummaryLine().Match(l)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))];

    private static int Accounted(TestRelay relay) => FullLines(relay) + Summaries(relay).Sum();

    private static async Task WaitUntilAsync(Func<bool> condition, int seconds)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition() && deadline.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }

    [GeneratedRegex(@"Refused (\d+) more TLS handshakes from 127\.0\.0\.1 in the last \d+ s: no client certificate")]
    private static partial Regex SummaryLine();
}

/// <summary>The aggregation table itself: counts per key and interval, and bounded memory.</summary>
public sealed class RefusalAggregatorTests
{
    private const string NoCertificate = "no client certificate";

    [Fact]
    public void Repeats_within_an_interval_are_counted_and_summarized_once_when_it_ends_then_the_next_is_logged_in_full()
    {
        var logs = new TestOutputLoggerProvider();
        var refusals = new RefusalAggregator(TimeSpan.FromSeconds(10), logs.CreateLogger("relayd"));
        var remote = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 40000);

        bool[] logged = [.. Enumerable.Range(0, 5).Select(i => refusals.ShouldLog(RefusalKind.TlsHandshake, new IPEndPoint(remote.Address, 40000 + i), NoCertificate, 1000 + i))];
        refusals.Flush(9_000); // interval not over: nothing yet
        Assert.Empty(logs.Lines);
        refusals.Flush(11_000);

        Assert.Equal([true, false, false, false, false], logged);
        Assert.Equal(["Refused 4 more TLS handshakes from 10.0.0.1 in the last 10 s: no client certificate"], logs.Lines.Select(Text));
        Assert.True(refusals.ShouldLog(RefusalKind.TlsHandshake, remote, NoCertificate, 11_001));
        Assert.False(refusals.ShouldLog(RefusalKind.TlsHandshake, remote, NoCertificate, 11_002));
        Assert.True(refusals.ShouldLog(RefusalKind.TlsHandshake, remote, "certificate chain not trusted", 11_003)); // another reason
    }

    [Fact]
    public void Beyond_the_table_size_refusals_are_counted_in_one_bucket_with_its_own_summary()
    {
        var logs = new TestOutputLoggerProvider();
        var refusals = new RefusalAggregator(TimeSpan.FromSeconds(10), logs.CreateLogger("relayd"));
        const int Extra = 500;

        int logged = 0;
        for (int i = 0; i < RefusalAggregator.MaxTrackedKeys + Extra; i++)
        {
            var remote = new IPEndPoint(new IPAddress(BitConverter.GetBytes(0x0A000000 + i)), 443);
            logged += refusals.ShouldLog(RefusalKind.TlsHandshake, remote, NoCertificate, 1000) ? 1 : 0;
        }

        refusals.Flush(11_000);

        Assert.Equal(RefusalAggregator.MaxTrackedKeys, logged);
        Assert.Equal([$"Refused {Extra} more connections in the last 10 s from addresses or for reasons not tracked one by one (more than {RefusalAggregator.MaxTrackedKeys} at once)"], logs.Lines.Select(Text));
    }

    private static string Text(string line) => line[(line.IndexOf(']', StringComparison.Ordinal) + 2)..];
}
