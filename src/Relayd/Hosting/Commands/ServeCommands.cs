using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Relayd.Wal;
using Relayd.Security;

namespace Relayd.Hosting.Commands;

/// <summary><c>relayd run</c>, <c>relayd check-config</c> and <c>relayd dev</c>.</summary>
internal static class ServeCommands
{
    public static Command Run()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "Path of the TOML configuration file", Required = true, DefaultValueFactory = _ => new FileInfo("/etc/relayd/relayd.toml") };
        var command = new Command("run", "Run the relay in the foreground (what the systemd unit starts)") { config };
        command.SetAction(async (parse, cancellationToken) =>
        {
            RelayOptions options;
            try
            {
                options = RelayConfigLoader.Load(parse.GetValue(config)!.FullName);
            }
            catch (ConfigException ex)
            {
                await Console.Error.WriteLineAsync(ex.Message);
                return ExitCodes.BadConfig;
            }

            return await RunHostAsync(options, cancellationToken);
        });
        return command;
    }

    /// <summary>Runs the relay until SIGTERM; the exit code says whether it stopped cleanly.</summary>
    public static async Task<int> RunHostAsync(RelayOptions options, CancellationToken cancellationToken)
    {
        using IHost host = RelayHost.Build(options);
        RelayHostedService relay = host.Services.GetRequiredService<RelayHostedService>(); // RunAsync disposes the container
        try
        {
            await host.RunAsync(cancellationToken);
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

        return relay.StorageFailure is null ? ExitCodes.Ok : ExitCodes.StorageFailed;
    }

    public static Command CheckConfig()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "Path of the TOML configuration file", Required = true };
        var command = new Command("check-config", "Validate a configuration file; every problem is printed with its key and line") { config };
        command.SetAction(parse =>
        {
            FileInfo file = parse.GetValue(config)!;
            IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(file.FullName);
            foreach (ConfigError error in errors)
            {
                Console.Error.WriteLine(error.ToString());
            }

            if (errors.Count > 0)
            {
                Console.Error.WriteLine($"{file.FullName}: {errors.Count} problem(s)");
                return ExitCodes.BadConfig;
            }

            Console.WriteLine($"{file.FullName}: OK");
            return ExitCodes.Ok;
        });
        return command;
    }

    public static Command Dev()
    {
        var dir = new Option<DirectoryInfo>("--dir") { Description = "Dev PKI directory (created when missing)", Required = true };
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1 to listen on", DefaultValueFactory = _ => 7443 };
        var partners = new Option<string[]>("--partner") { Description = "Approved partner ids (repeatable)", DefaultValueFactory = _ => ["alpha", "beta"], AllowMultipleArgumentsPerToken = true };
        var noSync = new Option<bool>("--no-sync") { Description = "Write the log without fdatasync (benchmarks of the non-durable path only)" };
        var command = new Command("dev", "Run a foreground dev relay on loopback with a generated dev PKI and its write-ahead log in DIR/wal") { dir, port, partners, noSync };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var pki = new DevPki(parse.GetValue(dir)!.FullName);
            pki.Init();
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
            };
            Console.WriteLine($"dev relay on {options.Listen}; relay CA (trust it for the server certificate): {pki.CaCertPath}");
            foreach (string id in parse.GetValue(partners)!)
            {
                if (!pki.HasPartner(id))
                {
                    pki.IssuePartner(id);
                }

                options.Partners.Add(new PartnerOptions { Id = id });
                Console.WriteLine($"  partner {id}: certificate {pki.PartnerCertPath(id)}  key {pki.PartnerKeyPath(id)}");
            }

            return await RunHostAsync(options, cancellationToken);
        });
        return command;
    }
}

/// <summary>Process exit codes (sysexits.h where one fits).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 64;
    public const int StorageCorrupt = 65; // EX_DATAERR: the log needs an operator (verify / repair)
    public const int StorageFailed = 74;  // EX_IOERR: fsync or write failed; restart to recover
    public const int BadConfig = 78; // EX_CONFIG
}
