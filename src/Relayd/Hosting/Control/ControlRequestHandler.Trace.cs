using System.Buffers.Binary;
using System.Globalization;
using Relayd.Protocol.V1;
using Relayd.Support.Trace;

namespace Relayd.Hosting.Control;

internal sealed partial class ControlRequestHandler
{
    /// <summary>
    /// <c>trace</c>: a message by (sender, message_id) or (recipient, delivery_id), or a media transfer by
    /// transfer_id: its steps with relay times and the time between them, and where it stopped.
    /// </summary>
    private async Task<ControlResponse> TraceAsync(ControlRequest request, CancellationToken cancellationToken)
    {
        if (_relay.Trace is not { } trace)
        {
            return ControlResponse.Failed(ControlErrors.NotAvailable, "the per-message trace is off on this relay ([trace] enabled = false, or --no-trace)");
        }

        if (request.TransferId is { Length: > 0 } transferHex)
        {
            if (ParseId(transferHex, "transfer_id") is { } bad)
            {
                return bad;
            }

            UInt128 transferId = BinaryPrimitives.ReadUInt128BigEndian(Convert.FromHexString(transferHex));
            IReadOnlyList<TraceRecord> events = await TraceQuery.TransferAsync(trace, transferId, cancellationToken);
            if (events.Count == 0)
            {
                return ControlResponse.Failed(ControlErrors.NotFound, $"the trace has no media transfer {transferHex.ToLowerInvariant()} (never seen, or older than [trace] retention_seconds)");
            }

            TraceSummary summary = TraceSummary.OfTransfer(events, trace);
            return new ControlResponse
            {
                Ok = true,
                Trace = new TraceView
                {
                    Of = "transfer",
                    Sender = events.FirstOrDefault(e => e.Sender is not null)?.Sender ?? "",
                    Recipient = events.FirstOrDefault(e => e.Recipient is not null)?.Recipient ?? "",
                    Id = transferHex.ToLowerInvariant(),
                    Steps = Steps(events),
                    Summary = summary.Text,
                    WaitingOn = summary.WaitingOn,
                },
            };
        }

        if (request.Sender is { Length: > 0 } requester && request.KeyBundleRequestId is { } requestId)
        {
            IReadOnlyList<TraceRecord> events = await TraceQuery.KeyBundleAsync(trace, requester, requestId, cancellationToken);
            if (events.Count == 0)
            {
                return ControlResponse.Failed(ControlErrors.NotFound, $"the trace has no key-bundle request {requestId.ToString(CultureInfo.InvariantCulture)} of '{requester}' (never seen, or older than [trace] retention_seconds)");
            }

            TraceSummary summary = TraceSummary.OfKeyBundle(events, trace);
            return Other("key bundle request", requester, events, requestId.ToString(CultureInfo.InvariantCulture), summary);
        }

        if (request.Sender is { Length: > 0 } reporter && request.ReportId is { Length: > 0 } reportHex)
        {
            if (ParseId(reportHex, "report_id") is { } bad)
            {
                return bad;
            }

            UInt128 reportId = BinaryPrimitives.ReadUInt128BigEndian(Convert.FromHexString(reportHex));
            IReadOnlyList<TraceRecord> events = await TraceQuery.AbuseReportAsync(trace, reporter, reportId, cancellationToken);
            if (events.Count == 0)
            {
                return ControlResponse.Failed(ControlErrors.NotFound, $"the trace has no abuse report {reportHex.ToLowerInvariant()} of '{reporter}' (never seen, or older than [trace] retention_seconds)");
            }

            return Other("abuse report", reporter, events, reportHex.ToLowerInvariant(), TraceSummary.OfAbuseReport(events));
        }

        MessageTrace? message;
        string asked;
        if (request.Sender is { Length: > 0 } sender)
        {
            if (request.MessageId is not { Length: > 0 } messageHex)
            {
                return ControlResponse.Failed(ControlErrors.MissingArgument, "trace with \"sender\" needs \"message_id\" (32 hex digits), \"key_bundle_request_id\" or \"report_id\"");
            }

            if (ParseId(messageHex, "message_id") is { } bad)
            {
                return bad;
            }

            asked = $"message {messageHex.ToLowerInvariant()} of '{sender}'";
            message = await TraceQuery.MessageAsync(trace, sender, BinaryPrimitives.ReadUInt128BigEndian(Convert.FromHexString(messageHex)), cancellationToken);
        }
        else if (request.Recipient is { Length: > 0 } recipient)
        {
            if (request.DeliveryId is not { } deliveryId)
            {
                return ControlResponse.Failed(ControlErrors.MissingArgument, "trace with \"recipient\" needs \"delivery_id\"");
            }

            asked = $"delivery {deliveryId.ToString(CultureInfo.InvariantCulture)} to '{recipient}'";
            message = await TraceQuery.DeliveryAsync(trace, recipient, deliveryId, cancellationToken);
        }
        else
        {
            return ControlResponse.Failed(ControlErrors.MissingArgument, "trace needs \"sender\" and \"message_id\" (or \"key_bundle_request_id\", or \"report_id\"), \"recipient\" and \"delivery_id\", or \"transfer_id\"");
        }

        if (message is null)
        {
            return ControlResponse.Failed(ControlErrors.NotFound, $"the trace has no {asked} (never seen, or older than [trace] retention_seconds)");
        }

        TraceSummary result = TraceSummary.Of(message, trace);
        TraceRecord? accepted = message.Events.FirstOrDefault(e => e.Kind == TraceEventKind.TraceAccepted);
        (string SenderUser, string RecipientUser)? raw = null;
        string? usersNote = null;
        if (request.ShowUsers)
        {
            raw = RawUsers(message, accepted);
            usersNote = raw is null
                ? "raw user ids are shown only while the relay holds the envelope in memory, undelivered or unacknowledged; this one it no longer does (or holds it in the write-ahead log only): keyed hashes shown"
                : null;
        }

        return new ControlResponse
        {
            Ok = true,
            Trace = new TraceView
            {
                Of = "message",
                Sender = message.Sender,
                Recipient = message.Recipient ?? "",
                Id = message.MessageId.ToString("x32", CultureInfo.InvariantCulture),
                SenderUser = raw?.SenderUser ?? (accepted is null ? null : HashText(accepted.SenderUserHash)),
                RecipientUser = raw?.RecipientUser ?? (accepted is null ? null : HashText(accepted.RecipientUserHash)),
                UsersNote = usersNote,
                Steps = Steps(WithReceived(message.Events)),
                Summary = result.Text,
                WaitingOn = result.WaitingOn,
            },
        };
    }

    /// <summary>
    /// The raw user ids (<c>hex:</c>) of a message the relay still holds: read from the recipient's queue in memory,
    /// the shard the trace recorded. The trace itself keeps keyed hashes only; the admin asked with an explicit flag.
    /// </summary>
    private (string SenderUser, string RecipientUser)? RawUsers(MessageTrace message, TraceRecord? accepted)
    {
        if (accepted is null || message.Recipient is null
            || _relay.Partners.Find(message.Sender) is not { } sender || _relay.Partners.Find(message.Recipient) is not { } recipient)
        {
            return null;
        }

        Routing.ShardQueue[] shards = recipient.Mailbox.Shards;
        return accepted.Shard < shards.Length && shards[accepted.Shard].TryCopyUsers(message.MessageId, sender, out byte[] senderUser, out byte[] recipientUser)
            ? ("hex:" + Convert.ToHexStringLower(senderUser), "hex:" + Convert.ToHexStringLower(recipientUser))
            : null;
    }

    // A key-bundle request or an abuse report: steps between two partners, no users.
    private static ControlResponse Other(string of, string sender, IReadOnlyList<TraceRecord> events, string id, TraceSummary summary) => new()
    {
        Ok = true,
        Trace = new TraceView
        {
            Of = of,
            Sender = sender,
            Recipient = events.FirstOrDefault(e => e.Recipient is not null)?.Recipient ?? "",
            Id = id,
            Steps = Steps(events),
            Summary = summary.Text,
            WaitingOn = summary.WaitingOn,
        },
    };

    private static string HashText(ulong hash) => "siphash:" + hash.ToString("x16", CultureInfo.InvariantCulture);

    private static ControlResponse? ParseId(string hex, string name) =>
        hex.Length == 32 && hex.All(char.IsAsciiHexDigit) ? null
            : ControlResponse.Failed(ControlErrors.MalformedRequest, $"{name} must be 32 hex digits (16 bytes), not '{hex}'");

    // RECEIVED is not written apart from ACCEPTED (the same session, size and time): shown as its own step.
    private static IEnumerable<TraceRecord> WithReceived(IReadOnlyList<TraceRecord> events) =>
        events.SelectMany(e => e.Kind == TraceEventKind.TraceAccepted
            ? (TraceRecord[])[e with { Kind = TraceEventKind.TraceReceived, Shard = 0, Flags = e.Flags & TraceFlags.FromLog }, e]
            : [e]);

    private static List<TraceStepView> Steps(IEnumerable<TraceRecord> events)
    {
        var steps = new List<TraceStepView>();
        long previous = long.MinValue;
        foreach (TraceRecord e in events)
        {
            bool delivery = e.Kind is TraceEventKind.TraceDelivered or TraceEventKind.TraceAcknowledged;
            bool keyBundle = e.Kind is >= TraceEventKind.TraceKeyBundleForwarded and <= TraceEventKind.TraceKeyBundleTimedOut;
            steps.Add(new TraceStepView
            {
                Step = TraceSummary.Word(e.Kind),
                At = DateTimeOffset.FromUnixTimeMilliseconds(e.AtMs),
                AfterMs = previous == long.MinValue ? 0 : e.AtMs - previous,
                Session = e.Session,
                Bytes = e.Bytes,
                TotalBytes = e.TotalBytes != 0 ? e.TotalBytes : null,
                Shard = e.Kind == TraceEventKind.TraceAccepted ? e.Shard : null,
                LogOnly = e.Kind == TraceEventKind.TraceAccepted && !e.FromLog ? e.LogOnly : null, // the log does not say where it was queued
                DeliveryId = delivery || keyBundle ? e.Number : null,
                Code = e.Code != 0 ? Protocol.ProtoNames.Of(e.Code) : null,
                Detail = e.Detail,
                Status = e.Kind == TraceEventKind.TraceReceipt ? Protocol.ProtoNames.Of(e.Status) : null,
                MessageId = e.Kind == TraceEventKind.TraceAbuseReported && e.Id != 0 ? e.Id.ToString("x32", CultureInfo.InvariantCulture) : null,
                FromLog = e.FromLog ? true : null,
            });
            previous = e.AtMs;
        }

        return steps;
    }
}
