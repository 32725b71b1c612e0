using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics.Journal;
using Relayd.Hosting.Reload;
using Relayd.Hosting.Systemd;

namespace Relayd.Hosting;

/// <summary>The generic host relayd runs in: systemd integration (notify), journal or console logs, SIGTERM.</summary>
internal static class RelayHost
{
    /// <param name="source">The file the options came from, which a reload (SIGHUP, <c>relayd ctl reload</c>) reads again; <see cref="ConfigSource.None"/> by default.</param>
    public static IHost Build(RelayOptions options, LogLevel minimumLevel = LogLevel.Information, ConfigSource? source = null)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            DisableDefaults = true,
            ApplicationName = "relayd",
        });
        builder.Services.AddSystemd();
        // AddSystemd registers its notifier only when systemd is the parent process. With NOTIFY_SOCKET set by anyone
        // else (a supervisor, a test) the relay notifies just the same: the notifier is a no-op without the variable.
        builder.Services.TryAddSingleton<ISystemdNotifier, SystemdNotifier>();
        builder.Services.AddSingleton<SystemdNotifications>();
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
        builder.Services.AddSingleton<IConfigReload>(services =>
        {
            RelayHostedService relay = services.GetRequiredService<RelayHostedService>();
            ConfigSource from = source ?? ConfigSource.None;
            return new ConfigReloader(from.Path, from.Values, () => relay.Serving, services.GetRequiredService<SystemdNotifications>(), relay.StatusNow, services.GetRequiredService<ILogger<ConfigReloader>>())
            {
                Reloaded = applied => relay.Metrics?.RecordReload(applied), // relayd_reloads_total{result}
            };
        });
        builder.Services.AddHostedService(services => services.GetRequiredService<RelayHostedService>());
        return builder.Build();
    }
}
