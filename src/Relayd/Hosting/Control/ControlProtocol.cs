using System.Text.Json.Serialization;

namespace Relayd.Hosting.Control;

/// <summary>
/// The control socket's protocol: JSON lines. The client writes one <see cref="ControlRequest"/> object on one line,
/// the relay answers one <see cref="ControlResponse"/> object on one line; a connection may carry several in turn.
/// Field names are snake_case; absent fields are left out. docs/operations.md lists every field.
/// </summary>
internal static class ControlProtocol
{
    /// <summary>Largest request line the relay reads; a longer one is refused with <see cref="ControlErrors.RequestTooLarge"/>.</summary>
    public const int MaxRequestBytes = 4096;

    /// <summary>Largest response line the client reads (a relay with many sessions answers <c>sessions</c> with a long line).</summary>
    public const int MaxResponseBytes = 64 * 1024 * 1024;

    public const string Status = "status";
    public const string Partners = "partners";
    public const string Sessions = "sessions";
    public const string Suspend = "suspend";
    public const string Resume = "resume";
    public const string Drain = "drain";
    public const string Reload = "reload";
    public const string WalStats = "wal_stats";
    public const string Abuse = "abuse";

    public const string Health = "health";
    public const string Trace = "trace";
}

/// <summary>The typed errors of the control protocol (<see cref="ControlError.Code"/>).</summary>
internal static class ControlErrors
{
    public const string PermissionDenied = "permission_denied";
    public const string MalformedRequest = "malformed_request";
    public const string RequestTooLarge = "request_too_large";
    public const string UnknownCommand = "unknown_command";
    public const string MissingArgument = "missing_argument";
    public const string UnknownPartner = "unknown_partner";
    public const string NotAvailable = "not_available";
    public const string ReloadRefused = "reload_refused";
    public const string Busy = "busy";
    public const string NotFound = "not_found";
    public const string Internal = "internal";
}

/// <summary>One request: <c>{"command":"suspend","partner":"alpha"}</c>.</summary>
internal sealed class ControlRequest
{
    /// <summary>status, partners, sessions, suspend, resume, drain, reload, wal_stats, abuse, health or trace.</summary>
    public string? Command { get; set; }

    /// <summary>suspend, resume and health: the partner id.</summary>
    public string? Partner { get; set; }

    /// <summary>trace: the message's sender partner (with <see cref="MessageId"/>).</summary>
    public string? Sender { get; set; }

    /// <summary>trace: the message id, 32 hex digits.</summary>
    public string? MessageId { get; set; }

    /// <summary>trace: the recipient partner (with <see cref="DeliveryId"/>).</summary>
    public string? Recipient { get; set; }

    /// <summary>trace: a delivery id the recipient partner received.</summary>
    public ulong? DeliveryId { get; set; }

    /// <summary>trace: a media transfer id, 32 hex digits.</summary>
    public string? TransferId { get; set; }

    /// <summary>trace: a key-bundle request's id, as its requester (<see cref="Sender"/>) chose it.</summary>
    public ulong? KeyBundleRequestId { get; set; }

    /// <summary>trace: an abuse report's report_id, 32 hex digits, of its reporter (<see cref="Sender"/>).</summary>
    public string? ReportId { get; set; }

    /// <summary>trace: the users' raw ids instead of their keyed hashes.</summary>
    public bool ShowUsers { get; set; }
}

/// <summary>One response: <c>ok</c>, and either the command's result (one of the other fields) or <c>error</c>.</summary>
internal sealed class ControlResponse
{
    public bool Ok { get; set; }

    public ControlError? Error { get; set; }

    public StatusView? Status { get; set; }

    public List<PartnerView>? Partners { get; set; }

    public List<SessionView>? Sessions { get; set; }

    /// <summary>suspend, resume, drain: what was done.</summary>
    public ActionView? Action { get; set; }

    /// <summary>reload: its outcome (also with <see cref="Error"/> <c>reload_refused</c>).</summary>
    public ReloadView? Reload { get; set; }

    public WalView? Wal { get; set; }

    /// <summary>abuse: the most recent abuse reports, newest first.</summary>
    public List<AbuseReportView>? AbuseReports { get; set; }

    /// <summary>health: one partner's health (<see cref="HealthView"/>).</summary>
    public HealthView? Health { get; set; }

    /// <summary>trace: one message's or transfer's timeline.</summary>
    public TraceView? Trace { get; set; }

    public static ControlResponse Failed(string code, string message) => new() { Error = new ControlError { Code = code, Message = message } };
}

internal sealed class ControlError
{
    /// <summary>One of <see cref="ControlErrors"/>.</summary>
    public string Code { get; set; } = "";

    public string Message { get; set; } = "";
}

internal sealed class StatusView
{
    /// <summary>The relay's informational version.</summary>
    public string Version { get; set; } = "";

    public string RelayId { get; set; } = "";

    public int Pid { get; set; }

    public DateTimeOffset StartedAt { get; set; }

    public double UptimeSeconds { get; set; }

    /// <summary>The configuration file; null when unknown (no reload support, or <c>relayd dev</c>).</summary>
    public string? ConfigFile { get; set; }

    /// <summary>False when this relay has no reload; then <see cref="LastReload"/> is null.</summary>
    public bool ReloadAvailable { get; set; }

    public ReloadView? LastReload { get; set; }

    public long LogBytes { get; set; }

    public int LogSegments { get; set; }

    /// <summary>Envelopes waiting for delivery to every partner (memory and log only).</summary>
    public long Backlog { get; set; }

    public bool Draining { get; set; }

    public int PartnersApproved { get; set; }

    public int PartnersSuspended { get; set; }

    public int Sessions { get; set; }
}

internal sealed class PartnerView
{
    public string Id { get; set; } = "";

    public int Sessions { get; set; }

    /// <summary>Envelopes accepted from the partner since start.</summary>
    public long EnvelopesIn { get; set; }

    /// <summary>Envelopes the partner acknowledged since start.</summary>
    public long EnvelopesOut { get; set; }

    /// <summary>Envelopes waiting for it, in memory.</summary>
    public long BacklogMemory { get; set; }

    /// <summary>Envelopes waiting for it, in the log only (spilled).</summary>
    public long BacklogLogOnly { get; set; }

    public bool Suspended { get; set; }
}

internal sealed class SessionView
{
    public long Id { get; set; }

    public string Partner { get; set; } = "";

    public string Remote { get; set; } = "";

    public string Agent { get; set; } = "";

    public DateTimeOffset ConnectedAt { get; set; }

    public long BytesIn { get; set; }

    public long BytesOut { get; set; }

    /// <summary>Envelopes accepted whose Ack waits for the log's commit.</summary>
    public int PendingAcks { get; set; }

    /// <summary>Deliveries sent and not yet acknowledged.</summary>
    public int DeliveriesInFlight { get; set; }
}

internal sealed class ActionView
{
    /// <summary>False when it was so already (suspending a suspended partner, draining twice).</summary>
    public bool Changed { get; set; }

    public string Message { get; set; } = "";
}

internal sealed class ReloadView
{
    public DateTimeOffset At { get; set; }

    public bool Applied { get; set; }

    public string RequestedBy { get; set; } = "";

    public string Summary { get; set; } = "";

    /// <summary>Why it was refused: each problem as <c>file:line: key: message</c>.</summary>
    public List<string> Problems { get; set; } = [];

    public static ReloadView Of(Reload.ReloadOutcome outcome) => new()
    {
        At = outcome.At,
        Applied = outcome.Applied,
        RequestedBy = outcome.RequestedBy,
        Summary = outcome.Summary,
        Problems = [.. outcome.Problems.Select(p => p.ToString())],
    };
}

internal sealed class WalView
{
    public string Directory { get; set; } = "";

    public long LogBytes { get; set; }

    public int Segments { get; set; }

    public long Syncs { get; set; }

    public double SyncP50Us { get; set; }

    public double SyncP99Us { get; set; }

    public double SyncMaxUs { get; set; }

    public List<PartnerView> Backlog { get; set; } = [];
}

/// <summary>One abuse report for the admin: users as hashes, never the note or the disclosed content.</summary>
internal sealed class AbuseReportView
{
    public ulong NoticeId { get; set; }

    public DateTimeOffset AcceptedAt { get; set; }

    public string ReporterPartner { get; set; } = "";

    /// <summary>xxHash3 of the reporting user's id, 16 hex digits.</summary>
    public string ReporterUser { get; set; } = "";

    public string ReportedPartner { get; set; } = "";

    /// <summary>xxHash3 of the reported user's id, 16 hex digits (the same user always hashes the same).</summary>
    public string ReportedUser { get; set; } = "";

    /// <summary>spam, harassment, illegal_content, impersonation or other.</summary>
    public string Reason { get; set; } = "";

    /// <summary>Message ids the relay carried from the reported user to the reporter.</summary>
    public int Verified { get; set; }

    /// <summary>Message ids it did not (never carried, between other users, or older than it remembers).</summary>
    public int Unverified { get; set; }

    /// <summary>The reported partner acknowledged the AbuseNotice.</summary>
    public bool DeliveredToReportedPartner { get; set; }
}

/// <summary>Source-generated (NativeAOT: no reflection) serialization of the control protocol.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
internal sealed partial class ControlJsonContext : JsonSerializerContext;
