using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Hosting.Reload;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Transport;

namespace Relayd.Hosting.Control;

/// <summary>Answers one control request against the running relay; every mutating command is logged with who asked.</summary>
internal sealed partial class ControlRequestHandler
{
    private readonly Relay _relay;
    private readonly RelayOptions _options;
    private readonly IConfigReload? _reload;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly DateTimeOffset _startedAt;

    public ControlRequestHandler(Relay relay, RelayOptions options, IConfigReload? reload, ILogger logger, TimeProvider? clock = null)
    {
        _relay = relay;
        _options = options;
        _reload = reload;
        _logger = logger;
        _clock = clock ?? TimeProvider.System;
        _startedAt = _clock.GetUtcNow();
    }

    /// <summary>The relay's version as built (the assembly's informational version).</summary>
    public static string Version =>
        typeof(Relay).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>Parses one request line and answers it; never throws (a failure is a typed error response).</summary>
    public async Task<ControlResponse> HandleAsync(ReadOnlyMemory<byte> line, PeerCredentials peer, CancellationToken cancellationToken)
    {
        ControlRequest? request;
        try
        {
            request = JsonSerializer.Deserialize(line.Span, ControlJsonContext.Default.ControlRequest);
        }
        catch (JsonException ex)
        {
            return ControlResponse.Failed(ControlErrors.MalformedRequest, $"not a JSON request object: {ex.Message}");
        }

        if (request?.Command is not { Length: > 0 } command)
        {
            return ControlResponse.Failed(ControlErrors.MalformedRequest, "the request has no \"command\"");
        }

        try
        {
            return command switch
            {
                ControlProtocol.Status => new ControlResponse { Ok = true, Status = Status() },
                ControlProtocol.Partners => new ControlResponse { Ok = true, Partners = Partners() },
                ControlProtocol.Sessions => new ControlResponse { Ok = true, Sessions = Sessions() },
                ControlProtocol.Suspend => WithPartner(request, peer, Suspend),
                ControlProtocol.Resume => WithPartner(request, peer, Resume),
                ControlProtocol.Drain => Drain(peer),
                ControlProtocol.Reload => await ReloadAsync(peer, cancellationToken),
                ControlProtocol.WalStats => new ControlResponse { Ok = true, Wal = Wal() },
                ControlProtocol.Abuse => new ControlResponse { Ok = true, AbuseReports = AbuseReports() },
                ControlProtocol.Health => Health(request),
                ControlProtocol.Trace => await TraceAsync(request, cancellationToken),
                _ => ControlResponse.Failed(ControlErrors.UnknownCommand,
                    $"unknown command '{command}' (expected status, partners, sessions, suspend, resume, drain, reload, wal_stats, abuse, health or trace)"),
            };
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ControlLog.ControlRequestFailed(_logger, command, peer.Uid, peer.Pid, ex);
            return ControlResponse.Failed(ControlErrors.Internal, $"{command} failed: {ex.Message}");
        }
    }

    private StatusView Status()
    {
        StorageMetrics storage = _relay.StorageMetrics;
        DateTimeOffset now = _clock.GetUtcNow();
        PartnerInfo[] partners = _relay.Partners.Partners;
        return new StatusView
        {
            Version = Version,
            RelayId = _options.RelayId,
            Pid = Environment.ProcessId,
            StartedAt = _startedAt,
            UptimeSeconds = Math.Round((now - _startedAt).TotalSeconds, 1),
            ConfigFile = _reload?.ConfigPath,
            ReloadAvailable = _reload is not null,
            LastReload = _reload?.LastReload is { } last ? ReloadView.Of(last) : null,
            LogBytes = storage.LogBytes,
            LogSegments = storage.Segments,
            Backlog = storage.Backlog.Sum(b => b.InMemory + b.InLogOnly),
            Draining = _relay.IsDraining,
            PartnersApproved = partners.Length,
            PartnersSuspended = partners.Count(p => p.IsSuspended),
            Sessions = _relay.Sessions.Count,
        };
    }

    /// <summary>The most recent abuse reports the relay keeps (up to 1000), newest first.</summary>
    private List<AbuseReportView> AbuseReports() =>
        [.. (_relay.Abuse?.Recent(1000) ?? []).Select(r => new AbuseReportView
        {
            NoticeId = r.NoticeId,
            AcceptedAt = DateTimeOffset.FromUnixTimeMilliseconds(r.AcceptedAtMs),
            ReporterPartner = r.ReporterPartner,
            ReporterUser = r.ReporterUserHash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
            ReportedPartner = r.ReportedPartner,
            ReportedUser = r.ReportedUserHash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture),
            Reason = r.Reason switch
            {
                Protocol.V1.AbuseReason.AbuseSpam => "spam",
                Protocol.V1.AbuseReason.AbuseHarassment => "harassment",
                Protocol.V1.AbuseReason.AbuseIllegalContent => "illegal_content",
                Protocol.V1.AbuseReason.AbuseImpersonation => "impersonation",
                Protocol.V1.AbuseReason.AbuseOther => "other",
                _ => $"reason {(int)r.Reason}",
            },
            Verified = r.Verified,
            Unverified = r.Unverified,
            DeliveredToReportedPartner = r.DeliveredToReportedPartner,
        })];

    private List<PartnerView> Partners() => PartnerViews(_relay.StorageMetrics.Backlog);

    private List<PartnerView> PartnerViews(IReadOnlyList<PartnerBacklog> backlog)
    {
        PartnerSession[] sessions = [.. _relay.Sessions];
        var views = new List<PartnerView>();
        foreach (PartnerInfo partner in _relay.Partners.Partners)
        {
            PartnerBacklog? waiting = backlog.FirstOrDefault(b => b.Partner == partner.Id);
            views.Add(new PartnerView
            {
                Id = partner.Id,
                Sessions = sessions.Count(s => ReferenceEquals(s.Partner, partner)),
                EnvelopesIn = partner.EnvelopesIn,
                EnvelopesOut = partner.EnvelopesOut,
                BacklogMemory = waiting?.InMemory ?? 0,
                BacklogLogOnly = waiting?.InLogOnly ?? 0,
                Suspended = partner.IsSuspended,
            });
        }

        return views;
    }

    private List<SessionView> Sessions() =>
    [
        .. _relay.Sessions.OrderBy(s => s.ConnectionId).Select(s => new SessionView
        {
            Id = s.ConnectionId,
            Partner = s.Partner.Id,
            Remote = s.Remote?.ToString() ?? "",
            Agent = s.Agent,
            ConnectedAt = s.ConnectedAt,
            BytesIn = s.BytesReceived,
            BytesOut = s.BytesSent,
            PendingAcks = s.PendingAcks,
            DeliveriesInFlight = s.DeliveriesInFlight,
        }),
    ];

    private WalView Wal()
    {
        StorageMetrics storage = _relay.StorageMetrics;
        return new WalView
        {
            Directory = _options.Storage.Directory,
            LogBytes = storage.LogBytes,
            Segments = storage.Segments,
            Syncs = storage.Syncs,
            SyncP50Us = storage.SyncP50Microseconds,
            SyncP99Us = storage.SyncP99Microseconds,
            SyncMaxUs = storage.SyncMaxMicroseconds,
            Backlog = PartnerViews(storage.Backlog),
        };
    }

    private ControlResponse WithPartner(ControlRequest request, PeerCredentials peer, Func<PartnerInfo, PeerCredentials, ActionView> action)
    {
        if (request.Partner is not { Length: > 0 } id)
        {
            return ControlResponse.Failed(ControlErrors.MissingArgument, $"{request.Command} needs \"partner\": the partner id");
        }

        PartnerInfo? partner = _relay.Partners.Find(id);
        return partner is null
            ? ControlResponse.Failed(ControlErrors.UnknownPartner, $"partner '{id}' is not approved on this relay")
            : new ControlResponse { Ok = true, Action = action(partner, peer) };
    }

    private ActionView Suspend(PartnerInfo partner, PeerCredentials peer)
    {
        if (partner.IsSuspended)
        {
            return new ActionView { Changed = false, Message = $"partner '{partner.Id}' was already suspended" };
        }

        int sessions = _relay.Suspend(partner);
        ControlLog.ControlPartnerSuspended(_logger, partner.Id, peer.Uid, peer.Pid, sessions);
        return new ActionView
        {
            Changed = true,
            Message = $"partner '{partner.Id}' suspended: {sessions} session(s) sent GoAway PARTNER_SUSPENDED; its envelopes and media, and those to it, are refused until resume (a restart also ends it)",
        };
    }

    private ActionView Resume(PartnerInfo partner, PeerCredentials peer)
    {
        if (!partner.Resume())
        {
            return new ActionView { Changed = false, Message = $"partner '{partner.Id}' was not suspended" };
        }

        ControlLog.ControlPartnerResumed(_logger, partner.Id, peer.Uid, peer.Pid);
        return new ActionView { Changed = true, Message = $"partner '{partner.Id}' resumed: it may connect again; what was queued for it is delivered" };
    }

    private ControlResponse Drain(PeerCredentials peer)
    {
        bool changed = _relay.Drain();
        long backlog = _relay.StorageMetrics.Backlog.Sum(b => b.InMemory + b.InLogOnly);
        if (changed)
        {
            ControlLog.ControlDrainStarted(_logger, peer.Uid, peer.Pid, backlog);
        }

        return new ControlResponse
        {
            Ok = true,
            Action = new ActionView
            {
                Changed = changed,
                Message = (changed ? "draining" : "already draining")
                    + $": new sessions and envelopes are refused with DRAINING until restart; delivering goes on ({backlog} envelopes left; see status)",
            },
        };
    }

    private async Task<ControlResponse> ReloadAsync(PeerCredentials peer, CancellationToken cancellationToken)
    {
        if (_reload is null)
        {
            return ControlResponse.Failed(ControlErrors.NotAvailable, "reload is not available in this relay");
        }

        ControlLog.ControlReloadRequested(_logger, peer.Uid, peer.Pid);
        ReloadOutcome outcome = await _reload.ReloadAsync(peer.Describe(), cancellationToken);
        var view = ReloadView.Of(outcome);
        return outcome.Applied
            ? new ControlResponse { Ok = true, Reload = view }
            : new ControlResponse
            {
                Reload = view,
                Error = new ControlError { Code = ControlErrors.ReloadRefused, Message = $"the new configuration was not applied (the old one keeps running): {outcome.Summary}" },
            };
    }
}
