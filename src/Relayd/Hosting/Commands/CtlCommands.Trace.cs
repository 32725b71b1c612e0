using System.CommandLine;
using System.Globalization;
using System.Text;
using Relayd.Hosting.Control;

namespace Relayd.Hosting.Commands;

internal static partial class CtlCommands
{
    /// <summary><c>relayd ctl trace --sender P (--message-id HEX | --key-bundle-request N | --abuse-report HEX) | --recipient P --delivery-id N | --transfer-id HEX [--show-users]</c>.</summary>
    private static Command Trace(Option<string> socket, Option<bool> json)
    {
        var sender = new Option<string>("--sender") { Description = "The message's sender partner (with --message-id), the key-bundle requester (with --key-bundle-request) or the abuse reporter (with --abuse-report)" };
        var keyBundleRequest = new Option<ulong?>("--key-bundle-request") { Description = "A key-bundle request id, as the requester (--sender) chose it" };
        var reportId = new Option<string>("--abuse-report") { Description = "An abuse report's report_id, 32 hex digits, of its reporter (--sender)" };
        var messageId = new Option<string>("--message-id") { Description = "The message id, 32 hex digits (with --sender)" };
        var recipient = new Option<string>("--recipient") { Description = "The recipient partner (with --delivery-id)" };
        var deliveryId = new Option<ulong?>("--delivery-id") { Description = "A delivery id the recipient partner received (with --recipient)" };
        var transferId = new Option<string>("--transfer-id") { Description = "A media transfer id, 32 hex digits" };
        var showUsers = new Option<bool>("--show-users") { Description = "Show the users' raw ids (hex) instead of their keyed hashes, while the relay holds the envelope in memory" };
        var command = new Command("trace", "One message's (or media transfer's) steps at the relay with times and durations, and whose side it waits on")
        {
            sender, messageId, keyBundleRequest, reportId, recipient, deliveryId, transferId, showUsers,
        };
        command.Validators.Add(result =>
        {
            int bySender = (result.GetValue(messageId) is not null ? 1 : 0) + (result.GetValue(keyBundleRequest) is not null ? 1 : 0) + (result.GetValue(reportId) is not null ? 1 : 0);
            bool byMessage = result.GetValue(sender) is not null || bySender > 0;
            bool byDelivery = result.GetValue(recipient) is not null || result.GetValue(deliveryId) is not null;
            bool byTransfer = result.GetValue(transferId) is not null;
            if ((byMessage ? 1 : 0) + (byDelivery ? 1 : 0) + (byTransfer ? 1 : 0) != 1)
            {
                result.AddError("give one of: --sender P --message-id HEX, --sender P --key-bundle-request N, --sender P --abuse-report HEX, --recipient P --delivery-id N, --transfer-id HEX");
            }
            else if (byMessage && (result.GetValue(sender) is null || bySender != 1))
            {
                result.AddError("--sender goes with one of --message-id, --key-bundle-request, --abuse-report");
            }
            else if (byDelivery && (result.GetValue(recipient) is null || result.GetValue(deliveryId) is null))
            {
                result.AddError("--recipient and --delivery-id go together");
            }
        });
        command.SetAction((parse, cancellationToken) => RunAsync(parse.GetValue(socket)!, parse.GetValue(json), new ControlRequest
        {
            Command = ControlProtocol.Trace,
            Sender = parse.GetValue(sender),
            MessageId = parse.GetValue(messageId),
            Recipient = parse.GetValue(recipient),
            DeliveryId = parse.GetValue(deliveryId),
            TransferId = parse.GetValue(transferId),
            KeyBundleRequestId = parse.GetValue(keyBundleRequest),
            ReportId = parse.GetValue(reportId),
            ShowUsers = parse.GetValue(showUsers),
        }, cancellationToken));
        return command;
    }
}

/// <summary>The readable timeline of <c>ctl trace</c>: one line per step with its relay time (UTC, ms) and the time since the step before, then where it stopped.</summary>
internal static class TraceText
{
    public static void Render(StringBuilder text, TraceView trace)
    {
        text.Append(CultureInfo.InvariantCulture, $"{trace.Of} {trace.Id}: {trace.Sender} -> {(trace.Recipient.Length > 0 ? trace.Recipient : "?")}");
        if (trace.SenderUser is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $" (users {trace.SenderUser} -> {trace.RecipientUser})");
        }

        text.AppendLine();
        if (trace.UsersNote is { } note)
        {
            text.AppendLine("  " + note);
        }

        foreach (TraceStepView step in trace.Steps)
        {
            var line = new StringBuilder();
            line.Append(CultureInfo.InvariantCulture, $"  {step.At.UtcDateTime:yyyy-MM-dd HH:mm:ss.fff}  {(step.AfterMs == 0 && step == trace.Steps[0] ? "" : "+" + Duration(step.AfterMs)),9}  {step.Step}");
            if (step.FromLog == true)
            {
                line.Append(" (from log)");
            }

            var facts = new List<string>();
            if (step.Session != 0)
            {
                facts.Add($"session {step.Session}");
            }
            else if (step.Step == "receipt")
            {
                facts.Add("held");
            }

            if (step.Status is { } status)
            {
                facts.Add(status);
            }

            if (step.MessageId is { } named)
            {
                facts.Add("message " + named);
            }

            if (step.DeliveryId is { } delivery)
            {
                facts.Add((step.Step.StartsWith("key bundle", StringComparison.Ordinal) ? "request " : "delivery ") + delivery.ToString(CultureInfo.InvariantCulture));
            }

            if (step.Shard is { } shard)
            {
                facts.Add($"shard {shard}" + (step.LogOnly switch { true => " log only", false => " in memory", null => "" }));
            }

            if (step.Bytes != 0)
            {
                facts.Add(step.TotalBytes is { } total ? $"{step.Bytes} of {total} bytes" : $"{step.Bytes} bytes");
            }

            if (step.Code is { } code)
            {
                facts.Add(code + (step.Detail is { } detail ? ": " + detail : ""));
            }

            if (facts.Count > 0)
            {
                line.Append("  ").Append(string.Join(", ", facts));
            }

            text.AppendLine(line.ToString());
        }

        text.AppendLine(trace.Summary);
    }

    private static string Duration(long ms) => ms switch
    {
        < 1000 => string.Create(CultureInfo.InvariantCulture, $"{ms} ms"),
        < 60_000 => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000.0:F3} s"),
        < 3_600_000 => string.Create(CultureInfo.InvariantCulture, $"{ms / 60_000}m{ms / 1000 % 60:D2}s"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ms / 3_600_000}h{ms / 60_000 % 60:D2}m"),
    };
}
