using System.Buffers;
using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Relayd.Hosting.Control;

namespace Relayd.Hosting.Commands;

/// <summary>
/// <c>relayd ctl [--socket PATH] [--json] COMMAND</c>: the admin client of a running relay's control socket. Prints a
/// table (or the raw response line with <c>--json</c>); a refusal is one line on stderr and a sysexits code.
/// </summary>
internal static partial class CtlCommands
{
    private const int ExitNoInput = 66;    // EX_NOINPUT: nothing recorded under that id (ctl trace)
    private const int ExitNoUser = 67;     // EX_NOUSER: no such partner
    private const int ExitProtocol = 76;   // EX_PROTOCOL: the relay's answer is not the control protocol
    private const int ExitNoPermission = 77; // EX_NOPERM: SO_PEERCRED refused this user

    public static Command Create()
    {
        var socket = new Option<string>("--socket")
        {
            Description = "The relay's control socket ([control] socket)",
            DefaultValueFactory = _ => ControlOptions.DefaultSocketPath,
            Recursive = true,
        };
        var json = new Option<bool>("--json") { Description = "Print the relay's JSON response as it is", Recursive = true };
        var ctl = new Command("ctl", "Look at a running relay and act on it through its control socket") { socket, json };
        ctl.Add(Simple("status", "Version, uptime, config and last reload, log size, backlog, draining", ControlProtocol.Status, socket, json));
        ctl.Add(Simple("partners", "Approved partners: sessions, envelopes in/out, backlog, suspended", ControlProtocol.Partners, socket, json));
        ctl.Add(Simple("sessions", "Connected sessions: remote address, partner, since, bytes, pending acks and deliveries", ControlProtocol.Sessions, socket, json));
        ctl.Add(WithPartner("suspend", "Suspend a partner: GoAway to its sessions, refuse its connections and what goes to or comes from it", ControlProtocol.Suspend, socket, json));
        ctl.Add(WithPartner("resume", "Lift a partner's suspension", ControlProtocol.Resume, socket, json));
        ctl.Add(Simple("drain", "Lame duck until restart: refuse new sessions and envelopes, keep delivering", ControlProtocol.Drain, socket, json));
        ctl.Add(Simple("reload", "Re-read and validate the configuration, apply it only when valid", ControlProtocol.Reload, socket, json));
        ctl.Add(Simple("abuse", "Recent abuse reports: time, reporter and reported partner, hashed users, reason, verified/unverified ids, notice delivered", ControlProtocol.Abuse, socket, json));
        ctl.Add(WithPartner("health", "A partner's health, is it us or them: sessions and disconnects, accepted and refused by code, backlog toward it, delivery latency, media failures, key-bundle timeouts", ControlProtocol.Health, socket, json));
        ctl.Add(Trace(socket, json));
        var wal = new Command("wal", "The write-ahead log");
        wal.Add(Simple("stats", "Segments, bytes, fdatasync latency, backlog per partner", ControlProtocol.WalStats, socket, json));
        ctl.Add(wal);
        return ctl;
    }

    private static Command Simple(string name, string description, string command, Option<string> socket, Option<bool> json)
    {
        var result = new Command(name, description);
        result.SetAction((parse, cancellationToken) =>
            RunAsync(parse.GetValue(socket)!, parse.GetValue(json), new ControlRequest { Command = command }, cancellationToken));
        return result;
    }

    private static Command WithPartner(string name, string description, string command, Option<string> socket, Option<bool> json)
    {
        var partner = new Argument<string>("PARTNER") { Description = "The partner id" };
        var result = new Command(name, description) { partner };
        result.SetAction((parse, cancellationToken) =>
            RunAsync(parse.GetValue(socket)!, parse.GetValue(json), new ControlRequest { Command = command, Partner = parse.GetValue(partner) }, cancellationToken));
        return result;
    }

    private static async Task<int> RunAsync(string path, bool json, ControlRequest request, CancellationToken cancellationToken)
    {
        byte[] line;
        try
        {
            line = await ExchangeAsync(path, request, cancellationToken);
        }
        catch (SocketException ex)
        {
            string why = !File.Exists(path) ? "no such file (is relayd running?)" : ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused (is relayd running?)",
                SocketError.AccessDenied => "permission denied (root, relayd's user or the [control] group only)",
                _ => ex.Message,
            };
            return Fail($"cannot connect to {path}: {why}", ExitCodes.ListenFailed);
        }
        catch (IOException ex)
        {
            return Fail($"{path}: {ex.Message}", ExitProtocol);
        }

        ControlResponse? response;
        try
        {
            response = JsonSerializer.Deserialize(line, ControlJsonContext.Default.ControlResponse);
        }
        catch (JsonException ex)
        {
            return Fail($"{path} answered something that is not a control response: {ex.Message}", ExitProtocol);
        }

        if (response is null)
        {
            return Fail($"{path} answered an empty response", ExitProtocol);
        }

        if (json)
        {
            Console.WriteLine(Encoding.UTF8.GetString(line));
        }
        else if (response.Ok)
        {
            Console.Write(ControlTables.Render(response));
        }

        if (response.Ok)
        {
            return ExitCodes.Ok;
        }

        ControlError error = response.Error ?? new ControlError { Code = ControlErrors.Internal, Message = "the relay refused without saying why" };
        if (!json && response.Reload is { } reload)
        {
            foreach (string problem in reload.Problems)
            {
                Console.Error.WriteLine("  " + problem);
            }
        }

        return Fail($"{error.Code}: {error.Message}", error.Code switch
        {
            ControlErrors.PermissionDenied => ExitNoPermission,
            ControlErrors.UnknownPartner => ExitNoUser,
            ControlErrors.NotFound => ExitNoInput,
            ControlErrors.MissingArgument or ControlErrors.UnknownCommand or ControlErrors.MalformedRequest or ControlErrors.RequestTooLarge => ExitCodes.Usage,
            ControlErrors.ReloadRefused => ExitCodes.BadConfig,
            ControlErrors.NotAvailable or ControlErrors.Busy => ExitCodes.ListenFailed,
            _ => ExitCodes.InternalError,
        });
    }

    /// <summary>Sends one request line and reads the one response line.</summary>
    private static async Task<byte[]> ExchangeAsync(string path, ControlRequest request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        TimeSpan timeout = TimeSpan.FromSeconds(60); // a reload may take a while; anything longer is a hung relay
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), deadline.Token);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        byte[] body = [.. JsonSerializer.SerializeToUtf8Bytes(request, ControlJsonContext.Default.ControlRequest), (byte)'\n'];
        try
        {
            await stream.WriteAsync(body, deadline.Token);
        }
        catch (IOException)
        {
            // EPIPE: the relay answered before reading (a SO_PEERCRED refusal) and closed; that answer is read below.
        }

        var received = new ArrayBufferWriter<byte>();
        while (true)
        {
            Memory<byte> free = received.GetMemory(16 * 1024);
            int read;
            try
            {
                read = await stream.ReadAsync(free, deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new IOException($"no answer within {timeout.TotalSeconds:F0} s");
            }

            if (read == 0)
            {
                if (received.WrittenCount == 0)
                {
                    throw new IOException("the relay closed the connection without an answer");
                }

                return received.WrittenSpan.ToArray();
            }

            int newline = free.Span[..read].IndexOf((byte)'\n');
            if (newline >= 0)
            {
                received.Advance(newline);
                return received.WrittenSpan.ToArray();
            }

            received.Advance(read);
            if (received.WrittenCount > ControlProtocol.MaxResponseBytes)
            {
                throw new IOException($"the answer exceeds {ControlProtocol.MaxResponseBytes} bytes");
            }
        }
    }

    private static int Fail(string message, int exitCode)
    {
        Console.Error.WriteLine("relayd ctl: " + message);
        return exitCode;
    }
}

/// <summary>The readable form of each control response: aligned columns, one row per item.</summary>
internal static class ControlTables
{
    public static string Render(ControlResponse response)
    {
        var text = new StringBuilder();
        if (response.Status is { } s)
        {
            string reload = !s.ReloadAvailable ? "not available"
                : s.LastReload is null ? "none since start"
                : $"{(s.LastReload.Applied ? "applied" : "REFUSED")} at {s.LastReload.At:u} ({s.LastReload.RequestedBy}): {s.LastReload.Summary}";
            Rows(text, [
                ["version", s.Version],
                ["relay id", s.RelayId],
                ["pid", Number(s.Pid)],
                ["uptime", Uptime(s.UptimeSeconds) + $" (since {s.StartedAt:u})"],
                ["config", s.ConfigFile ?? "(unknown)"],
                ["reload", reload],
                ["log", $"{Bytes(s.LogBytes)} in {Number(s.LogSegments)} segment(s)"],
                ["backlog", Number(s.Backlog) + " envelope(s)"],
                ["partners", $"{Number(s.PartnersApproved)} approved, {Number(s.PartnersSuspended)} suspended"],
                ["sessions", Number(s.Sessions)],
                ["draining", s.Draining ? "yes" : "no"],
            ]);
            foreach (string problem in s.LastReload?.Problems ?? [])
            {
                text.Append("  ").AppendLine(problem);
            }
        }

        if (response.Partners is { } partners)
        {
            Table(text, ["PARTNER", "SESSIONS", "IN", "OUT", "BACKLOG", "SPILLED", "SUSPENDED"],
                partners.Select(p => new[] { p.Id, Number(p.Sessions), Number(p.EnvelopesIn), Number(p.EnvelopesOut), Number(p.BacklogMemory + p.BacklogLogOnly), Number(p.BacklogLogOnly), p.Suspended ? "yes" : "no" }));
        }

        if (response.Sessions is { } sessions)
        {
            Table(text, ["ID", "PARTNER", "REMOTE", "CONNECTED", "BYTES IN", "BYTES OUT", "PENDING ACKS", "IN FLIGHT", "AGENT"],
                sessions.Select(x => new[] { Number(x.Id), x.Partner, x.Remote, x.ConnectedAt.ToString("u", CultureInfo.InvariantCulture), Number(x.BytesIn), Number(x.BytesOut), Number(x.PendingAcks), Number(x.DeliveriesInFlight), x.Agent }));
        }

        if (response.AbuseReports is { } reports)
        {
            Table(text, ["ACCEPTED", "REPORTER", "REPORTER USER", "REPORTED", "REPORTED USER", "REASON", "VERIFIED", "UNVERIFIED", "DELIVERED"],
                reports.Select(r => new[] { r.AcceptedAt.ToString("u", CultureInfo.InvariantCulture), r.ReporterPartner, r.ReporterUser, r.ReportedPartner, r.ReportedUser, r.Reason, Number(r.Verified), Number(r.Unverified), r.DeliveredToReportedPartner ? "yes" : "no" }));
        }

        if (response.Trace is { } trace)
        {
            TraceText.Render(text, trace);
        }

        if (response.Health is { } health)
        {
            HealthTable.Render(text, health);
        }

        if (response.Action is { } action)
        {
            text.AppendLine(action.Message);
        }

        if (response.Reload is { } r)
        {
            text.AppendLine(r.Applied ? "reload applied: " + r.Summary : "reload refused: " + r.Summary);
        }

        if (response.Wal is { } w)
        {
            Rows(text, [
                ["directory", w.Directory],
                ["log", $"{Bytes(w.LogBytes)} in {Number(w.Segments)} segment(s)"],
                ["fdatasyncs", $"{Number(w.Syncs)}: p50 {w.SyncP50Us:F0} µs, p99 {w.SyncP99Us:F0} µs, max {w.SyncMaxUs:F0} µs"],
            ]);
            Table(text, ["BACKLOG OF", "IN MEMORY", "LOG ONLY"], w.Backlog.Select(p => new[] { p.Id, Number(p.BacklogMemory), Number(p.BacklogLogOnly) }));
        }

        return text.ToString();
    }

    internal static void Rows(StringBuilder text, string[][] rows)
    {
        int width = rows.Max(r => r[0].Length) + 1;
        foreach (string[] row in rows)
        {
            text.Append((row[0] + ":").PadRight(width + 1)).AppendLine(row[1]);
        }
    }

    private static void Table(StringBuilder text, string[] headers, IEnumerable<string[]> rows)
    {
        List<string[]> all = [headers, .. rows];
        int[] widths = [.. headers.Select((_, i) => all.Max(r => r[i].Length))];
        foreach (string[] row in all)
        {
            text.AppendLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
        }
    }

    internal static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Bytes(long bytes) => bytes >= 1024 * 1024
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):F1} MiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes");

    private static string Uptime(double seconds)
    {
        var span = TimeSpan.FromSeconds(seconds);
        return span.TotalDays >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{(int)span.TotalDays}d {span.Hours}h {span.Minutes}m")
            : string.Create(CultureInfo.InvariantCulture, $"{span.Hours}h {span.Minutes}m {span.Seconds}s");
    }
}
