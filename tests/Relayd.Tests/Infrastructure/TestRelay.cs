using Microsoft.Extensions.Logging;
using Relayd.Hosting;
using Relayd.Protocol;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// A real relay on a loopback port with real TLS, in this process, configured per test. Logs go to the test output.
/// </summary>
public sealed class TestRelay : IAsyncDisposable
{
    private readonly ILoggerFactory _logging;
    private string? _temporaryWal;

    private TestRelay(TestPki pki, RelayOptions options, ILoggerFactory logging, Relayd.Routing.ISupportEvents? supportConsumer = null, TimeProvider? clock = null)
    {
        Pki = pki;
        Options = options;
        _logging = logging;
        Server = RelayServerFactory.Create(options, logging.CreateLogger("relayd"), clock);
        if (supportConsumer is not null)
        {
            Server.AddSupportConsumer(supportConsumer);
        }

        Server.StartAsync(TestContext.Current.CancellationToken).GetAwaiter().GetResult(); // completes at once
    }

    public TestPki Pki { get; }

    public RelayOptions Options { get; }

    internal Relay Server { get; }

    public int Port => Server.LocalEndPoint.Port;

    /// <summary>Every line the relay logged, for tests that check a refusal's reason.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Logs { get; private init; } = new();

    /// <summary>Waits until the relay has logged a line containing <paramref name="text"/>.</summary>
    public async Task<string> WaitForLogAsync(string text, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            string? line = Logs.FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            if (line is not null)
            {
                return line;
            }

            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        throw new Xunit.Sdk.XunitException($"the relay never logged '{text}'; it logged:\n{string.Join("\n", Logs)}");
    }

    /// <summary>Starts a relay approving alpha, beta and gamma unless <paramref name="configure"/> says otherwise.</summary>
    public static TestRelay Start(TestPki pki, Action<RelayOptions>? configure = null) => Start(pki, supportConsumer: null, clock: null, configure);

    /// <summary>Starts a relay whose data path also reports each message's steps to <paramref name="supportConsumer"/>.</summary>
    internal static TestRelay Start(TestPki pki, Relayd.Routing.ISupportEvents? supportConsumer, Action<RelayOptions>? configure = null) =>
        Start(pki, supportConsumer, clock: null, configure);

    /// <summary>Starts a relay that reads the time from <paramref name="clock"/> (a FakeTimeProvider: rate-limit buckets that do not refill while a test runs).</summary>
    internal static TestRelay Start(TestPki pki, TimeProvider clock, Action<RelayOptions>? configure = null) => Start(pki, supportConsumer: null, clock, configure);

    private static TestRelay Start(TestPki pki, Relayd.Routing.ISupportEvents? supportConsumer, TimeProvider? clock, Action<RelayOptions>? configure)
    {
        RelayOptions options = DefaultOptions(pki);
        string wal = options.Storage.Directory;
        configure?.Invoke(options);
        try
        {
            options.Validate(); // the checks a configuration file gets
        }
        catch (RelayOptionsException)
        {
            Directory.Delete(wal, recursive: true);
            throw;
        }

        var logs = new TestOutputLoggerProvider();
        ILoggerFactory logging = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Information));
        if (options.Storage.Directory != wal)
        {
            Directory.Delete(wal);
        }

        return new TestRelay(pki, options, logging, supportConsumer, clock) { Logs = logs.Lines, _temporaryWal = options.Storage.Directory == wal ? wal : null };
    }

    /// <summary>What <see cref="Start"/> configures: alpha, beta and gamma approved, a fresh write-ahead log directory.</summary>
    public static RelayOptions DefaultOptions(TestPki pki)
    {
        var options = new RelayOptions
        {
            Listen = "127.0.0.1:0",
            RelayId = "relayd-test",
            Tls = new TlsOptions { CertificatePath = pki.ServerCertPath, KeyPath = pki.ServerKeyPath, PartnerCaPath = pki.CaPath },
        };
        foreach (string id in (string[])["alpha", "beta", "gamma"])
        {
            options.Partners.Add(new PartnerOptions { Id = id });
        }

        options.Limits.ShutdownTimeout = TimeSpan.FromSeconds(2);
        options.Storage.Directory = Directory.CreateTempSubdirectory("relayd-test-wal-").FullName;
        options.Storage.ReserveBytes = 16L * 1024 * 1024;
        options.Storage.SegmentBytes = 4 * 1024 * 1024;
        options.Media.SpoolDirectory = Path.Combine(pki.Directory, "spool-" + Guid.NewGuid().ToString("N"));

        // Opt-in is the relay's default; tests of other capabilities send between users nobody registered. Tests of
        // opt-in turn it on.
        options.Interop.RequireOptIn = false;

        // So are the rate limits (a user's 20 envelopes/s): tests of other capabilities send thousands from one user.
        // Tests of the limits turn them on.
        options.Interop.RateLimits = false;
        return options;
    }

    public RelayClientOptions ClientOptions(string partnerId) => ClientOptions(Pki.Partner(partnerId));

    public RelayClientOptions ClientOptions(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate) => new()
    {
        Host = "localhost",
        Port = Port,
        Tls = new() { ClientCertificate = certificate, RelayRoots = [Pki.Ca] },
        ConnectTimeout = TimeSpan.FromSeconds(10),
    };

    public Task<RelayClient> ConnectAsync(string partnerId, Func<RelayClientOptions, RelayClientOptions>? adjust = null)
    {
        RelayClientOptions options = ClientOptions(partnerId);
        return RelayClient.ConnectAsync(adjust is null ? options : adjust(options), TestContext.Current.CancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        _logging.Dispose();
        if (_temporaryWal is not null)
        {
            Directory.Delete(_temporaryWal, recursive: true);
        }
    }
}
