using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Relayd.Protocol;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// The real daemon (<c>dotnet relayd.dll run --config FILE</c>) on a free loopback port, for signals, crashes and
/// restarts: it writes the config, starts the process and waits until it listens, kills it with SIGKILL or stops it
/// with SIGTERM, starts it again on the same port and the same write-ahead log, and keeps what it printed.
/// </summary>
/// <remarks>
/// Each run's output is kept (and echoed to the test output as <c>[relayd#N]</c>) so a failure shows what every
/// process printed. Set <c>RELAYD_DURABILITY_WITHOUT_WAL=1</c> to leave the [wal] table out of the config: that runs
/// the same tests against a relay that keeps everything in memory only, which the durability tests must fail (the
/// proof that they can detect loss); never set it in CI.
/// </remarks>
internal sealed class RelaydProcess : IAsyncDisposable
{
    /// <summary>
    /// The [wal] keys besides <c>dir</c> unless a test gives its own: a 16 MiB free-space reserve instead of the
    /// 512 MiB default, so the tests also run on a small /tmp.
    /// </summary>
    public const string DefaultWalKeys = "reserve_bytes = 16777216";

    private readonly TestPki _pki;
    private readonly string _configPath;
    private readonly bool _ownsWalDirectory;
    private readonly string? _spoolDirectory;
    private readonly ConcurrentQueue<string> _allOutput = new();
    private Process? _process;
    private ConcurrentQueue<string> _output = new();
    private int _runs;

    /// <summary>Writes the config (partners alpha, beta and gamma approved); <see cref="StartAsync"/> starts the process.</summary>
    /// <param name="pki">Certificates for the relay and the partners alpha, beta and gamma.</param>
    /// <param name="tables">Further TOML tables, e.g. <c>[media]</c>; [wal] and [limits] come from the other parameters.</param>
    /// <param name="walDirectory">The log directory, kept across restarts; by default a temporary one this relay deletes.</param>
    /// <param name="walKeys">Keys for the [wal] table besides <c>dir</c>, e.g. <c>segment_bytes = 1048576</c>.</param>
    /// <param name="limitsKeys">Keys for the [limits] table, e.g. <c>default_retention_seconds = 2</c>.</param>
    /// <param name="shutdownTimeoutMs">limits.shutdown_timeout_ms: short, so a SIGTERM with partners still connected ends soon.</param>
    public RelaydProcess(TestPki pki, string tables = "", string? walDirectory = null, string walKeys = DefaultWalKeys, string limitsKeys = "", int shutdownTimeoutMs = 3000)
    {
        if (tables.Contains("[wal]", StringComparison.Ordinal) || tables.Contains("[limits]", StringComparison.Ordinal))
        {
            throw new ArgumentException("give [wal] and [limits] keys through walDirectory/walKeys/limitsKeys, not as tables", nameof(tables));
        }

        _pki = pki;
        _ownsWalDirectory = walDirectory is null;
        WalDirectory = walDirectory ?? Directory.CreateTempSubdirectory("relayd-process-wal-").FullName;
        Port = RelaydConfigFile.FreePort();

        // Without a [media] table the relay would spool to its default, /var/lib/relayd/spool, shared by every run:
        // a blob one test left there would be delivered in another.
        string media = "";
        if (!tables.Contains("[media]", StringComparison.Ordinal))
        {
            _spoolDirectory = Directory.CreateTempSubdirectory("relayd-process-spool-").FullName;
            media = $"""
                [media]
                spool_dir = "{_spoolDirectory}"
                """;
        }

        // Opt-in is the relay's default; tests of other capabilities send between users nobody registered. Tests of
        // opt-in give their own [interop] table.
        // So are the rate limits (tests send thousands of envelopes from one user): off unless the test's [interop]
        // table sets rate_limits.
        string interop = tables.Contains("[interop]", StringComparison.Ordinal) ? "" : """
            [interop]
            require_opt_in = false
            rate_limits = false
            """;
        if (tables.Contains("[interop]", StringComparison.Ordinal) && !tables.Contains("rate_limits", StringComparison.Ordinal))
        {
            tables = tables.Replace("[interop]", "[interop]\nrate_limits = false", StringComparison.Ordinal);
        }

        string wal = WithoutWal ? "" : $"""
            [wal]
            dir = "{WalDirectory}"
            {walKeys}
            """;
        _configPath = RelaydConfigFile.Write(pki, "relayd-process-test", Port, $"""
            {wal}

            [limits]
            shutdown_timeout_ms = {shutdownTimeoutMs}
            {limitsKeys}

            {media}

            {interop}

            {tables}
            """);
    }

    /// <summary>True when <c>RELAYD_DURABILITY_WITHOUT_WAL=1</c>: the config has no [wal] table (see remarks).</summary>
    public static bool WithoutWal => System.Environment.GetEnvironmentVariable("RELAYD_DURABILITY_WITHOUT_WAL") == "1";

    public int Port { get; }

    public string WalDirectory { get; }

    /// <summary>The config file the relay runs on (a test may rewrite it before a reload).</summary>
    public string ConfigPath => _configPath;

    /// <summary>Environment variables for the next start (NOTIFY_SOCKET, WATCHDOG_USEC...).</summary>
    public Dictionary<string, string> Environment { get; } = [];

    /// <summary>The running process's id; throws when none runs.</summary>
    public int Pid => (_process ?? throw new InvalidOperationException("relayd is not running")).Id;

    /// <summary>How many processes were started so far.</summary>
    public int Runs => _runs;

    /// <summary>What the current (or last) process printed.</summary>
    public string Output => string.Join('\n', _output);

    /// <summary>What every process printed, each line prefixed with its run number.</summary>
    public string AllOutput => string.Join('\n', _allOutput);

    /// <summary>
    /// Starts relayd on the same config and waits until it prints "listening on" (printed after recovery). Retries
    /// a few times when the port is still held by the previous process's sockets.
    /// </summary>
    public async Task StartAsync(int readySeconds = 60)
    {
        if (_process is { HasExited: false })
        {
            throw new InvalidOperationException("relayd is already running");
        }

        for (int attempt = 1; ; attempt++)
        {
            StartProcess();
            try
            {
                await WaitForOutputAsync("listening on", readySeconds);
                return;
            }
            catch (Xunit.Sdk.XunitException) when (attempt < 20 && _process!.HasExited && PortWasBusy())
            {
                await Task.Delay(250);
            }
        }
    }

    /// <summary>Starts relayd without waiting for it to be ready (to kill it during recovery).</summary>
    public void Launch()
    {
        if (_process is { HasExited: false })
        {
            throw new InvalidOperationException("relayd is already running");
        }

        StartProcess();
    }

    public async Task WaitForOutputAsync(string text, int seconds = 30)
    {
        Process process = _process ?? throw new InvalidOperationException("relayd is not running");
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!_output.Any(l => l.Contains(text, StringComparison.Ordinal)))
        {
            if (DateTime.UtcNow > deadline || process.HasExited)
            {
                // Let the output readers catch up so the message shows the last lines too.
                await Task.Delay(100);
                string state = process.HasExited ? $"exited with {process.ExitCode}" : $"still running after {seconds} s";
                throw new Xunit.Sdk.XunitException($"relayd (run {_runs}) did not print '{text}' ({state}); output:\n{Output}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly like a crash or power loss of the process.</summary>
    public async Task KillAsync()
    {
        const int SigKill = 9;
        Process process = _process ?? throw new InvalidOperationException("relayd is not running");
        RelaydConfigFile.Signal(process, SigKill);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>SIGTERM (a systemd stop), then waits for the exit; returns the exit code.</summary>
    public Task<int> TerminateAsync(int seconds = 30)
    {
        SendSigterm();
        return WaitForExitAsync(seconds);
    }

    /// <summary>SIGTERM without waiting, for tests that watch the drain from the partners' side.</summary>
    public void SendSigterm()
    {
        const int SigTerm = 15;
        RelaydConfigFile.Signal(_process ?? throw new InvalidOperationException("relayd is not running"), SigTerm);
    }

    /// <summary>SIGHUP: reload the configuration (what <c>systemctl reload</c> sends).</summary>
    public void SendSighup()
    {
        const int SigHup = 1;
        RelaydConfigFile.Signal(_process ?? throw new InvalidOperationException("relayd is not running"), SigHup);
    }

    /// <summary>Waits for the process to exit by itself; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(int seconds = 30)
    {
        Process process = _process ?? throw new InvalidOperationException("relayd is not running");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        await process.WaitForExitAsync(timeout.Token);
        return process.ExitCode;
    }

    /// <summary>Stops the process (SIGKILL when <paramref name="kill"/>, else SIGTERM) and starts it again on the same log.</summary>
    public async Task RestartAsync(bool kill)
    {
        if (kill)
        {
            await KillAsync();
        }
        else
        {
            int exitCode = await TerminateAsync();
            Assert.True(exitCode == 0, $"relayd exited with {exitCode} on SIGTERM; output:\n{Output}");
        }

        await StartAsync();
    }

    /// <summary>VmRSS of the running process, in bytes, from /proc/PID/status.</summary>
    public long ReadRssBytes() => ProcessMemory.ReadVmRssBytes(Pid);

    public RelayClientOptions ClientOptions(string partnerId, bool receipts = true) => new()
    {
        Host = "localhost",
        Port = Port,
        Tls = new() { ClientCertificate = _pki.Partner(partnerId), RelayRoots = [_pki.Ca] },
        ReceiveReceipts = receipts,
    };

    public Task<RelayClient> ConnectAsync(string partnerId, bool receipts = true) =>
        RelayClient.ConnectAsync(ClientOptions(partnerId, receipts), TestContext.Current.CancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await process.WaitForExitAsync(timeout.Token);
            }

            process.Dispose();
        }

        if (_ownsWalDirectory)
        {
            Directory.Delete(WalDirectory, recursive: true);
        }

        if (_spoolDirectory is not null)
        {
            Directory.Delete(_spoolDirectory, recursive: true);
        }
    }

    private void StartProcess()
    {
        _process?.Dispose();
        ProcessStartInfo start = RelaydConfigFile.RunCommand(_configPath);
        foreach ((string name, string value) in Environment)
        {
            start.Environment[name] = value;
        }
        int run = Interlocked.Increment(ref _runs);
        var output = new ConcurrentQueue<string>();
        _output = output;
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Record(output, run, e.Data);
        process.ErrorDataReceived += (_, e) => Record(output, run, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
    }

    private bool PortWasBusy() => _output.Any(l =>
        l.Contains("address already in use", StringComparison.OrdinalIgnoreCase) || l.Contains("EADDRINUSE", StringComparison.Ordinal));

    private void Record(ConcurrentQueue<string> output, int run, string? line)
    {
        if (line is null)
        {
            return;
        }

        output.Enqueue(line);
        _allOutput.Enqueue(string.Create(CultureInfo.InvariantCulture, $"[{run}] {line}"));
        try
        {
            TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[relayd#{run}] {line}"));
        }
        catch (InvalidOperationException)
        {
            // Output after the test ended.
        }
    }
}
