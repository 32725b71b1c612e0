using System.Diagnostics;
using System.Security.Authentication;
using System.Text.RegularExpressions;
using Relayd.Tests.Infrastructure;

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
