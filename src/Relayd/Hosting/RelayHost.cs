using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics.Journal;

namespace Relayd.Hosting;

/// <summary>The generic host relayd runs in: systemd integration (notify), journal or console logs, SIGTERM.</summary>
internal static class RelayHost
{
    public static IHost Build(RelayOptions options, LogLevel minimumLevel = LogLevel.Information)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ApplicationName = "relayd",
        });
        builder.Services.AddSystemd();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(minimumLevel);
        var journal = new JournalOptions { IncludeStackTraces = minimumLevel <= LogLevel.Debug };
        if (JournalStream.IsStandardError() && File.Exists(journal.SocketPath))
        {
            // stderr is the journal: log natively, with relayd's fields (docs/operations.md, "The journal").
            builder.Services.AddSingleton<ILoggerProvider>(_ => new JournalLoggerProvider(journal));
        }
        else if (Microsoft.Extensions.Hosting.Systemd.SystemdHelpers.IsSystemdService())
        {
            builder.Logging.AddConsole(); // AddSystemd switches it to journald's format with priorities
        }
        else
        {
            builder.Logging.AddSimpleConsole(console =>
            {
                console.SingleLine = true;
                console.TimestampFormat = "HH:mm:ss.fff ";
            });
        }
        TimeSpan stopHeadroom = TimeSpan.FromSeconds(5); // the relay's own abort grace (2 s), closing the store and the final log lines
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.Limits.ShutdownTimeout + stopHeadroom);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<RelayHostedService>();
        builder.Services.AddHostedService(services => services.GetRequiredService<RelayHostedService>());
        return builder.Build();
    }
}
