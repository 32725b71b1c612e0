using System.Globalization;
using Relayd.Protocol.V1;

namespace Relayd.Support.Trace;

/// <summary>Where a message's timeline stopped and whose side it waits on, in one line; <see cref="WaitingOn"/> names that partner (null: nobody).</summary>
internal sealed record TraceSummary(string Text, string? WaitingOn)
{
    /// <summary>Relay time as the admin reads it: UTC, to the millisecond.</summary>
    public static string Time(long atMs) => DateTimeOffset.FromUnixTimeMilliseconds(atMs).UtcDateTime.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);

    /// <summary>
    /// Reads the last step of <paramref name="message"/>: refused, queued for a recipient with or without a session,
    /// delivered and not acknowledged, receipt held for the sender, complete, expired, purged.
    /// </summary>
    public static TraceSummary Of(MessageTrace message, TraceRecorder trace)
    {
        IReadOnlyList<TraceRecord> events = message.Events;
        TraceRecord? Last(TraceEventKind kind) => events.LastOrDefault(e => e.Kind == kind);
        string sender = message.Sender;
        string recipient = message.Recipient ?? "?";

        if (Last(TraceEventKind.TracePurged) is { } purged)
        {
            return new($"purged {Time(purged.AtMs)} by an operator from {recipient}'s queue: nothing waits", null);
        }

        if (Last(TraceEventKind.TraceExpired) is { } expired)
        {
            return new($"expired {Time(expired.AtMs)} undelivered in {recipient}'s queue ({Sessions(recipient, trace)})" + ReceiptTail(events, sender, trace), ReceiptWaiting(events, sender, trace));
        }

        if (Last(TraceEventKind.TraceReceipt) is { } receipt)
        {
            string status = Status(receipt.Status);
            return receipt.Session != 0
                ? new($"complete: receipt {status} handed to {sender} (session {receipt.Session}) {Time(receipt.AtMs)}", null)
                : new($"receipt {status} held {Time(receipt.AtMs)}, waiting for {sender} to connect: {Sessions(sender, trace)}", sender);
        }

        if (Last(TraceEventKind.TraceAcknowledged) is { } acked)
        {
            return new($"acknowledged by {recipient} {Time(acked.AtMs)} (delivery {acked.Number}): delivered; no receipt recorded for {sender} (it asked for none, or the relay produces it next)", null);
        }

        if (Last(TraceEventKind.TraceDelivered) is { } delivered)
        {
            return new($"delivered {Time(delivered.AtMs)} to {recipient} (session {delivered.Session}, delivery {delivered.Number}), waiting for {recipient} to acknowledge it: {Sessions(recipient, trace)}", recipient);
        }

        if (Last(TraceEventKind.TraceAccepted) is { } accepted)
        {
            (int open, _) = trace.Presence(recipient);
            string where = $"accepted {Time(accepted.AtMs)}" + (accepted.FromLog ? " (from log)" : "");
            return open == 0
                ? new($"{where}, waiting for {recipient}: {Sessions(recipient, trace)}", recipient)
                : new($"{where}, queued for {recipient} (shard {accepted.Shard}{(accepted.LogOnly ? ", log only" : "")}): {Sessions(recipient, trace)}; waiting for the relay to deliver it ({recipient}'s delivery window may be full)", recipient);
        }

        if (Last(TraceEventKind.TraceRefused) is { } refused)
        {
            return new($"refused {Time(refused.AtMs)} with {ErrorName(refused.Code)}: {refused.Detail}; nothing was stored, nothing waits", null);
        }

        return new($"only {Word(events[^1].Kind)} {Time(events[^1].AtMs)} is recorded (the rest is past the retention or was dropped)", null);
    }

    /// <summary>Where a media transfer stopped.</summary>
    public static TraceSummary OfTransfer(IReadOnlyList<TraceRecord> events, TraceRecorder trace)
    {
        TraceRecord last = events[^1];
        string sender = last.Sender ?? events.FirstOrDefault(e => e.Sender is not null)?.Sender ?? "?";
        string recipient = last.Recipient ?? events.FirstOrDefault(e => e.Recipient is not null)?.Recipient ?? "?";
        return last.Kind switch
        {
            TraceEventKind.TraceMediaFailed => new($"failed {Time(last.AtMs)} with {ErrorName(last.Code)}: {last.Detail}", null),
            TraceEventKind.TraceMediaReceived => new($"complete: received by {recipient} {Time(last.AtMs)}", null),
            TraceEventKind.TraceMediaDelivered => new($"offered to {recipient} {Time(last.AtMs)}, waiting for {recipient} to take it: {Sessions(recipient, trace)}", recipient),
            TraceEventKind.TraceMediaComplete => new($"complete at the relay {Time(last.AtMs)} ({last.Bytes} bytes), waiting for {recipient}: {Sessions(recipient, trace)}", recipient),
            _ => new($"uploading: {Bytes(events)} bytes received by {Time(last.AtMs)}, waiting for {sender} to send the rest: {Sessions(sender, trace)}", sender),
        };
    }

    /// <summary>Where a key-bundle request stopped: answered (with its status), timed out, or waiting for the target's answer.</summary>
    public static TraceSummary OfKeyBundle(IReadOnlyList<TraceRecord> events, TraceRecorder trace)
    {
        TraceRecord last = events[^1];
        string requester = last.Sender ?? "?";
        string target = events.FirstOrDefault(e => e.Recipient is not null)?.Recipient ?? "?";
        return last.Kind switch
        {
            TraceEventKind.TraceKeyBundleAnswered => new($"complete: {target} answered {Time(last.AtMs)}" + (last.Code != 0 ? $" with {ErrorName(last.Code)}" : "") + $", handed to {requester}", null),
            TraceEventKind.TraceKeyBundleTimedOut => new($"timed out {Time(last.AtMs)}: {target} did not answer in time ({Sessions(target, trace)}); {requester} was told", null),
            _ => new($"forwarded to {target} {Time(last.AtMs)}, waiting for {target} to answer: {Sessions(target, trace)}", target),
        };
    }

    /// <summary>An abuse report: stored when recorded; which messages it names.</summary>
    public static TraceSummary OfAbuseReport(IReadOnlyList<TraceRecord> events)
    {
        int named = events.Count(e => e.Id != 0);
        return new($"recorded {Time(events[0].AtMs)}: {events[0].Sender} reported {events[0].Recipient ?? "?"}, naming {named} message{(named == 1 ? "" : "s")} (relayd ctl abuse lists the report)", null);
    }

    private static string Bytes(IReadOnlyList<TraceRecord> events) =>
        events.Max(e => e.Bytes).ToString(CultureInfo.InvariantCulture) + (events.Max(e => e.TotalBytes) is > 0 and long total ? $" of {total}" : "");

    private static string ReceiptTail(IReadOnlyList<TraceRecord> events, string sender, TraceRecorder trace) =>
        events.LastOrDefault(e => e.Kind == TraceEventKind.TraceReceipt) is { Session: 0 } held
            ? $"; receipt {Status(held.Status)} held, waiting for {sender} to connect: {Sessions(sender, trace)}" : "";

    private static string? ReceiptWaiting(IReadOnlyList<TraceRecord> events, string sender, TraceRecorder trace) =>
        events.LastOrDefault(e => e.Kind == TraceEventKind.TraceReceipt) is { Session: 0 } ? sender : null;

    /// <summary>"beta has no session since 11:58:02", "beta has 2 sessions", "beta has had no session since the relay started at ...".</summary>
    public static string Sessions(string partner, TraceRecorder trace)
    {
        (int open, long lastClosedMs) = trace.Presence(partner);
        return open > 0 ? $"{partner} has {open} session{(open == 1 ? "" : "s")}"
            : lastClosedMs > 0 ? $"{partner} has no session since {Time(lastClosedMs)}"
            : $"{partner} has had no session since the relay started at {Time(trace.StartedAtMs)}";
    }

    public static string Status(ReceiptStatus status) => Protocol.ProtoNames.Of(status);

    /// <summary>The step's word in a timeline: "accepted", "media complete", "key bundle timed out".</summary>
    public static string Word(TraceEventKind kind) => kind switch
    {
        TraceEventKind.TraceReceived => "received",
        TraceEventKind.TraceRefused => "refused",
        TraceEventKind.TraceAccepted => "accepted",
        TraceEventKind.TraceDurable => "durable",
        TraceEventKind.TraceDelivered => "delivered",
        TraceEventKind.TraceAcknowledged => "acknowledged",
        TraceEventKind.TraceReceipt => "receipt",
        TraceEventKind.TraceExpired => "expired",
        TraceEventKind.TracePurged => "purged",
        TraceEventKind.TraceDuplicate => "duplicate",
        TraceEventKind.TraceMediaOpened => "media opened",
        TraceEventKind.TraceMediaProgress => "media progress",
        TraceEventKind.TraceMediaComplete => "media complete",
        TraceEventKind.TraceMediaDelivered => "media delivered",
        TraceEventKind.TraceMediaReceived => "media received",
        TraceEventKind.TraceMediaFailed => "media failed",
        TraceEventKind.TraceKeyBundleForwarded => "key bundle forwarded",
        TraceEventKind.TraceKeyBundleAnswered => "key bundle answered",
        TraceEventKind.TraceKeyBundleTimedOut => "key bundle timed out",
        TraceEventKind.TraceAbuseReported => "abuse reported",
        _ => $"event {(int)kind}",
    };

    /// <summary>The proto's name of a code (e.g. UNKNOWN_RECIPIENT_PARTNER).</summary>
    public static string ErrorName(ErrorCode code) => Protocol.ProtoNames.Of(code);
}
