using System.CommandLine;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using System.Runtime.InteropServices;
using Relayd.Diagnostics;
using Relayd.Hosting.Reload;
using Relayd.Wal;
using Relayd.Security;

namespace Relayd.Hosting.Commands;

/// <summary><c>relayd run</c>, <c>relayd check-config</c> and <c>relayd dev</c>.</summary>
internal static class ServeCommands
{
    private const string DefaultConfigPath = "/etc/relayd/relayd.toml";

    public static Command Run()
    {
        Option<FileInfo> config = ConfigOption();
        Option<bool> noTrace = NoTraceOption();
        var command = new Command("run", "Run the relay in the foreground (what the systemd unit starts)") { config, noTrace };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string path = parse.GetValue(config)!.FullName;
            LoadedConfig loaded = RelayConfigLoader.Read(path, checkFiles: false); // the [tls] files are loaded by the relay itself
            if (!loaded.IsValid)
            {
                await Console.Error.WriteLineAsync(new ConfigException([.. loaded.Problems.Where(p => !p.IsWarning)]).Message);
                return ExitCodes.BadConfig;
            }

            loaded.Options.Trace.Enabled &= !parse.GetValue(noTrace);
            return await RunHostAsync(loaded.Options, cancellationToken, [.. loaded.Problems.Where(p => p.IsWarning)], new ConfigSource(path, loaded.Values));
        });
        return command;
    }

    /// <summary>Runs the relay until SIGTERM; the exit code says whether it stopped cleanly or why it would not start.</summary>
    public static async Task<int> RunHostAsync(RelayOptions options, CancellationToken cancellationToken, IReadOnlyList<ConfigError>? configWarnings = null, ConfigSource? source = null)
    {
        IHost host = RelayHost.Build(options, source: source);
        try
        {
            RelayHostedService relay = host.Services.GetRequiredService<RelayHostedService>();
            ILogger logger = host.Services.GetRequiredService<ILogger<RelayHostedService>>();
            IConfigReload reload = host.Services.GetRequiredService<IConfigReload>();

            // SIGHUP (systemctl reload) re-reads the configuration; registered before the long recovery, so that an
            // early SIGHUP is refused with a log line instead of ending the process (its default action).
            using PosixSignalRegistration hangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
            {
                context.Cancel = true;
                _ = ReloadOnSignalAsync(reload, logger);
            });
            foreach (ConfigError warning in configWarnings ?? [])
            {
                RelayLog.ConfigWarning(logger, warning.ToString());
            }

            if (await OpenAsync(relay, options) is { } refused)
            {
                return refused;
            }

            await host.RunAsync(cancellationToken); // SIGTERM: the host drains within limits.shutdown_timeout_ms
            return relay.StorageFailure is null ? ExitCodes.Ok : ExitCodes.StorageFailed;
        }
        finally
        {
            await ((IAsyncDisposable)host).DisposeAsync(); // again after RunAsync, which is harmless
        }
    }

    private static async Task ReloadOnSignalAsync(IConfigReload reload, ILogger logger)
    {
        try
        {
            await reload.ReloadAsync("SIGHUP");
        }
        catch (Exception ex)
        {
            // Nothing may escape a signal handler's task; the reload logs its own refusals, this is for the rest.
            OperationsLog.ReloadRefused(logger, "SIGHUP", $"internal error ({ex.GetType().Name}): {ex.Message}");
        }
    }

    /// <summary>Opens the relay before the host starts; null when it is ready, else the exit code after one line on stderr.</summary>
    private static async Task<int?> OpenAsync(RelayHostedService relay, RelayOptions options)
    {
        try
        {
            relay.Open();
            return null;
        }
        catch (TlsMaterialException ex)
        {
            foreach (TlsProblem problem in ex.Problems)
            {
                await Console.Error.WriteLineAsync($"relayd: refusing to start: {problem}");
            }

            return ExitCodes.BadConfig;
        }
        catch (Support.Evidence.EvidenceKeyException ex)
        {
            await Console.Error.WriteLineAsync($"relayd: refusing to start: {ex.Message}");
            return ExitCodes.BadConfig;
        }
        catch (Diagnostics.Prometheus.MetricsListenException ex)
        {
            await Console.Error.WriteLineAsync($"relayd: refusing to start: {ex.Message}");
            return ExitCodes.ListenFailed;
        }
        catch (SocketException ex)
        {
            string reason = ex.SocketErrorCode == SocketError.AddressAlreadyInUse ? "address already in use (is another relayd running?)" : ex.Message;
            await Console.Error.WriteLineAsync($"relayd: refusing to start: cannot listen on {options.Listen}: {reason}");
            return ExitCodes.ListenFailed;
        }
        catch (WalCorruptionException ex)
        {
            await Console.Error.WriteLineAsync($"relayd: refusing to start: {ex.Message}\n  inspect: relayd wal verify --dir {options.Storage.Directory}\n  repair (moves the damaged tail to quarantine, logged): relayd wal repair --dir {options.Storage.Directory}");
            return ExitCodes.StorageCorrupt;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"relayd: refusing to start: {ex.Message}");
            return ExitCodes.StorageCorrupt;
        }
    }

    public static Command CheckConfig()
    {
        Option<FileInfo> config = ConfigOption();
        var syntaxOnly = new Option<bool>("--syntax-only")
        {
            Description = "Check syntax, keys, values and ranges only, not the files named under [tls] (for a config away from its machine)",
        };
        var command = new Command("check-config", "Validate a configuration file and the [tls] files it names, as 'run' would load them; every problem is printed with its key and line") { config, syntaxOnly };
        command.SetAction(parse =>
        {
            FileInfo file = parse.GetValue(config)!;
            IReadOnlyList<ConfigError> problems = RelayConfigLoader.Check(file.FullName, checkFiles: !parse.GetValue(syntaxOnly));
            foreach (ConfigError problem in problems)
            {
                Console.Error.WriteLine(problem.ToString());
            }

            int errors = problems.Count(p => !p.IsWarning);
            if (errors > 0)
            {
                Console.Error.WriteLine($"{file.FullName}: {errors} problem(s)");
                return ExitCodes.BadConfig;
            }

            Console.WriteLine($"{file.FullName}: OK");
            return ExitCodes.Ok;
        });
        return command;
    }

    // Overrides [trace] enabled for one run: to measure what the trace costs, or to run without it.
    private static Option<bool> NoTraceOption() => new("--no-trace") { Description = "Do not record the per-message trace ([trace] enabled = false for this run)" };

    private static Option<FileInfo> ConfigOption() => new("--config", "-c")
    {
        Description = "Path of the TOML configuration file",
        DefaultValueFactory = _ => new FileInfo(DefaultConfigPath),
    };

    public static Command Dev()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Dev PKI directory (created when missing)", Required = true };
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1 to listen on", DefaultValueFactory = _ => 7443 };
        var partners = new Option<string[]>("--partner") { Description = "Approved partner ids (repeatable)", DefaultValueFactory = _ => ["alpha", "beta"], AllowMultipleArgumentsPerToken = true };
        var noSync = new Option<bool>("--no-sync") { Description = "Write the log without fdatasync (benchmarks of the non-durable path only)" };
        var noOptIn = new Option<bool>("--no-opt-in") { Description = "Admit envelopes without ConsentUpdate ([interop] require_opt_in = false; benchmarks of the path without opt-in, and old clients)" };
        var rateLimits = new Option<string>("--rate-limits")
        {
            Description = "defaults: the [interop] defaults; bench: every limit on at rates a load generator cannot reach; off: none",
            DefaultValueFactory = _ => "defaults",
        };
        rateLimits.AcceptOnlyFromAmong("defaults", "bench", "off");
        var health = new Option<string>("--health") { Description = "on: record partner health (the default); off: not (to measure what it costs)", DefaultValueFactory = _ => "on" };
        health.AcceptOnlyFromAmong("on", "off");
        Option<bool> noTrace = NoTraceOption();
        var evidence = new Option<string>("--evidence") { Description = "on: sign delivery evidence with DIR/evidence.key (created when missing); off: not (the default, as without an [evidence] key)", DefaultValueFactory = _ => "off" };
        evidence.AcceptOnlyFromAmong("on", "off");
        var command = new Command("dev", "Run a foreground dev relay on loopback with a generated dev PKI and its write-ahead log in DIR/wal") { dir, port, partners, noSync, rateLimits, noOptIn, health, noTrace, evidence };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(partners)!.Select(DevPki.PartnerIdProblem).FirstOrDefault(p => p is not null) is { } badId)
            {
                await Console.Error.WriteLineAsync("relayd: " + badId);
                return ExitCodes.Usage;
            }

            var pki = new DevPki(parse.GetValue(dir)!.FullName);
            var options = new RelayOptions
            {
                Listen = $"127.0.0.1:{parse.GetValue(port)}",
                RelayId = "relayd-dev",
                Tls = new TlsOptions { CertificatePath = pki.ServerCertPath, KeyPath = pki.ServerKeyPath, PartnerCaPath = pki.CaCertPath },
                Media = new MediaOptions { SpoolDirectory = Path.Combine(parse.GetValue(dir)!.FullName, "spool") },
                Storage = new StorageOptions
                {
                    Directory = Path.Combine(parse.GetValue(dir)!.FullName, "wal"),
                    ReserveBytes = 64L * 1024 * 1024,
                    Sync = !parse.GetValue(noSync),
                },
                Interop = new InteropOptions { RequireOptIn = !parse.GetValue(noOptIn) },
            };
            foreach (string id in parse.GetValue(partners)!)
            {
                options.Partners.Add(new PartnerOptions { Id = id });
            }

            options.Health.Enabled = parse.GetValue(health) != "off";
            options.Trace.Enabled = !parse.GetValue(noTrace);
            switch (parse.GetValue(rateLimits))
            {
                case "bench":
                    options.Interop.UseBenchmarkRates();
                    break;
                case "off":
                    options.Interop.RateLimits = false;
                    break;
            }

            // The checks a configuration file gets, before anything is written: the options come from the command line.
            if (options.Check() is { Count: > 0 } problems)
            {
                foreach (OptionsProblem problem in problems)
                {
                    await Console.Error.WriteLineAsync("relayd: " + problem);
                }

                return ExitCodes.Usage;
            }

            try
            {
                pki.Init();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                await Console.Error.WriteLineAsync("relayd: " + ex.Message);
                return ExitCodes.CannotCreate;
            }

            Console.WriteLine($"dev relay on {options.Listen}; relay CA (trust it for the server certificate): {pki.CaCertPath}");
            foreach (PartnerOptions partner in options.Partners)
            {
                if (!pki.HasPartner(partner.Id))
                {
                    pki.IssuePartner(partner.Id);
                }

                Console.WriteLine($"  partner {partner.Id}: certificate {pki.PartnerCertPath(partner.Id)}  key {pki.PartnerKeyPath(partner.Id)}");
            }

            if (parse.GetValue(evidence) == "on" && DevEvidenceKey(parse.GetValue(dir)!.FullName) is { } evidenceKey)
            {
                options.Evidence.KeyPath = evidenceKey;
                Console.WriteLine($"  evidence key: {evidenceKey}");
            }

            return await RunHostAsync(options, cancellationToken);
        });
        return command;
    }

    /// <summary>The dev relay's evidence key, DIR/evidence.key, created when missing; null (after a line on stderr) if it cannot be.</summary>
    private static string? DevEvidenceKey(string directory)
    {
        string path = Path.Combine(directory, "evidence.key");
        try
        {
            if (!File.Exists(path))
            {
                Support.Evidence.EvidenceKey.CreateFile(path);
            }

            return path;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"relayd: cannot create the dev evidence key {path}: {ex.Message}; evidence stays off");
            return null;
        }
    }
}

/// <summary>Process exit codes (sysexits.h where one fits).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 64;
    public const int StorageCorrupt = 65; // EX_DATAERR: the log needs an operator (verify / repair)
    public const int NoInput = 66;        // EX_NOINPUT: e.g. no write-ahead log in the directory given
    public const int ListenFailed = 69;   // EX_UNAVAILABLE: the listen port is taken (or cannot be bound)
    public const int InternalError = 70;  // EX_SOFTWARE: a bug; the message says what failed
    public const int CannotCreate = 73;   // EX_CANTCREAT: e.g. the dev PKI directory is not writable
    public const int StorageFailed = 74;  // EX_IOERR: fsync or write failed; restart to recover
    public const int BadConfig = 78; // EX_CONFIG
}
