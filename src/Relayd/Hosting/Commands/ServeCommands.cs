using System.CommandLine;
using Microsoft.Extensions.Hosting;
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

            using IHost host = RelayHost.Build(options);
            await host.RunAsync(cancellationToken);
            return ExitCodes.Ok;
        });
        return command;
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
        var command = new Command("dev", "Run a foreground dev relay on loopback with a generated dev PKI") { dir, port, partners };
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

            using IHost host = RelayHost.Build(options);
            await host.RunAsync(cancellationToken);
            return ExitCodes.Ok;
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
    public const int BadConfig = 78; // EX_CONFIG
}
