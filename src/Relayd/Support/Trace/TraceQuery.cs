using Relayd.Protocol.V1;

namespace Relayd.Support.Trace;

/// <summary>One message's events, oldest first, with the partners it is between (recipient null: refused before routing).</summary>
internal sealed record MessageTrace(string Sender, UInt128 MessageId, string? Recipient, IReadOnlyList<TraceRecord> Events);

/// <summary>
/// Finds events in the trace's segments: flushes the ring first (so what was just reported is there), then scans the
/// segments newest first, decoding only records whose kind and id match. Blocking file reads: run off the data path.
/// </summary>
internal static class TraceQuery
{
    /// <summary>The message <paramref name="messageId"/> of <paramref name="sender"/>; null when the trace has none of its events.</summary>
    public static async Task<MessageTrace?> MessageAsync(TraceRecorder trace, string sender, UInt128 messageId, CancellationToken cancellationToken)
    {
        await trace.FlushAsync().WaitAsync(cancellationToken);
        return await Task.Run(() => Message(trace.Directory, sender, messageId, cancellationToken), cancellationToken);
    }

    /// <summary>The message delivered to <paramref name="recipient"/> as <paramref name="deliveryId"/> (the newest such delivery).</summary>
    public static async Task<MessageTrace?> DeliveryAsync(TraceRecorder trace, string recipient, ulong deliveryId, CancellationToken cancellationToken)
    {
        await trace.FlushAsync().WaitAsync(cancellationToken);
        return await Task.Run(() =>
        {
            TraceRecord? delivery = Newest(trace.Directory, static (kind, _) => kind is TraceEventKind.TraceDelivered or TraceEventKind.TraceAcknowledged,
                r => r.Recipient == recipient && r.Number == deliveryId && r.Sender is not null, cancellationToken);
            return delivery is null ? null : Message(trace.Directory, delivery.Sender!, delivery.Id, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>The media transfer <paramref name="transferId"/>'s events; empty when none.</summary>
    public static async Task<IReadOnlyList<TraceRecord>> TransferAsync(TraceRecorder trace, UInt128 transferId, CancellationToken cancellationToken)
    {
        await trace.FlushAsync().WaitAsync(cancellationToken);
        return await Task.Run(() => Scan(trace.Directory, (kind, id) => IsMedia(kind) && id == transferId, _ => true, stopAfter: _ => false, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// Key-bundle request <paramref name="requestId"/> of <paramref name="requester"/>: its newest run (from the last
    /// time it was forwarded: a requester may reuse an id later); empty when none.
    /// </summary>
    public static async Task<IReadOnlyList<TraceRecord>> KeyBundleAsync(TraceRecorder trace, string requester, ulong requestId, CancellationToken cancellationToken)
    {
        await trace.FlushAsync().WaitAsync(cancellationToken);
        return await Task.Run(() =>
        {
            List<TraceRecord> events = Scan(trace.Directory, static (kind, _) => IsKeyBundle(kind), r => r.Sender == requester && r.Number == requestId,
                stopAfter: segment => segment.Any(r => r.Kind == TraceEventKind.TraceKeyBundleForwarded), cancellationToken);
            // A run starts where it was forwarded, or with an answer that follows no forward (refused at once).
            int from = 0;
            for (int i = 1; i < events.Count; i++)
            {
                if (events[i].Kind == TraceEventKind.TraceKeyBundleForwarded || events[i - 1].Kind != TraceEventKind.TraceKeyBundleForwarded)
                {
                    from = i;
                }
            }

            return (IReadOnlyList<TraceRecord>)events.GetRange(from, events.Count - from);
        }, cancellationToken);
    }

    /// <summary>Abuse report <paramref name="reportId"/> of <paramref name="reporter"/>: one record per message it names; empty when none.</summary>
    public static async Task<IReadOnlyList<TraceRecord>> AbuseReportAsync(TraceRecorder trace, string reporter, UInt128 reportId, CancellationToken cancellationToken)
    {
        await trace.FlushAsync().WaitAsync(cancellationToken);
        return await Task.Run(() => Scan(trace.Directory, static (kind, _) => kind == TraceEventKind.TraceAbuseReported, r => r.Sender == reporter && r.ReportId == reportId,
            stopAfter: segment => segment.Count > 0, cancellationToken), cancellationToken); // a report is recorded at once, in one batch
    }

    public static bool IsKeyBundle(TraceEventKind kind) => kind is >= TraceEventKind.TraceKeyBundleForwarded and <= TraceEventKind.TraceKeyBundleTimedOut;

    public static bool IsMedia(TraceEventKind kind) => kind is >= TraceEventKind.TraceMediaOpened and <= TraceEventKind.TraceMediaFailed;

    private static bool IsEnvelope(TraceEventKind kind) => kind is >= TraceEventKind.TraceReceived and <= TraceEventKind.TraceDuplicate;

    private static MessageTrace? Message(string directory, string sender, UInt128 messageId, CancellationToken cancellationToken)
    {
        List<TraceRecord> events = Scan(directory,
            (kind, id) => id == messageId && (IsEnvelope(kind) || kind == TraceEventKind.TraceAbuseReported),
            r => r.Kind == TraceEventKind.TraceAbuseReported ? r.Recipient == sender : r.Sender == sender && (r.Flags & (TraceFlags.NoId | TraceFlags.Group)) == 0,
            // Older segments can only hold earlier attempts: the segment with the original ACCEPTED is the last read.
            stopAfter: segment => segment.Any(r => r.Kind == TraceEventKind.TraceAccepted && !r.FromLog),
            cancellationToken);
        if (events.Count == 0)
        {
            return null;
        }

        // DURABLE is written once per batch of a session's Acks (TraceFlags.Group): each attempt's own comes from it.
        foreach (TraceRecord accepted in events.Where(r => r.Kind == TraceEventKind.TraceAccepted && !r.FromLog && r.Number != 0).ToList())
        {
            if (DurableOf(directory, accepted, cancellationToken) is { } durable)
            {
                events.Add(durable);
            }
        }

        events = [.. WithoutRedundantDerived(events).OrderBy(r => r.AtMs)];
        string? recipient = events.FirstOrDefault(r => r.Kind != TraceEventKind.TraceAbuseReported && r.Recipient is not null)?.Recipient;
        return new MessageTrace(sender, messageId, recipient, events);
    }

    /// <summary>
    /// The DURABLE step of <paramref name="accepted"/>: the first group DURABLE of its sender's session whose marks
    /// cover its mark, read forward from its time and only within the relay process that accepted it (a later
    /// process reuses session ids, and after a crash log positions too). Null when that process wrote none (the Ack
    /// was not sent yet, or the process ended first: then the restart's DURABLE derived from the log stands in).
    /// </summary>
    internal static TraceRecord? DurableOf(string directory, TraceRecord accepted, CancellationToken cancellationToken)
    {
        const long ClockSlackMs = 1000; // segments are skipped by their newest event's time: allow a clock step back
        TraceRecord? durable = null;
        bool laterProcess = false;
        foreach (TraceSegment segment in TraceSegment.List(directory))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!segment.IsOpen && segment.LastMs < accepted.AtMs - ClockSlackMs)
            {
                continue;
            }

            TraceSegmentReader.Read(segment.Path, static (kind, id) => kind == TraceEventKind.TraceDurable && id == 0, record =>
            {
                if (durable is null && !laterProcess && record.IsGroup && record.Session == accepted.Session && record.Sender == accepted.Sender
                    && record.From <= accepted.Number && accepted.Number <= record.Number)
                {
                    durable = record;
                }
            }, startedAtMs => laterProcess |= durable is null && startedAtMs > accepted.AtMs);
            if (durable is not null || laterProcess)
            {
                break;
            }
        }

        return durable is null ? null : new TraceRecord
        {
            Kind = TraceEventKind.TraceDurable, AtMs = durable.AtMs, Id = accepted.Id, Sender = accepted.Sender, Session = durable.Session,
        };
    }

    // An event derived from the log at a restart is dropped where its original survived.
    private static List<TraceRecord> WithoutRedundantDerived(List<TraceRecord> events)
    {
        var kept = new List<TraceRecord>(events.Count);
        foreach (TraceRecord record in events)
        {
            bool redundant = record.FromLog
                && (events.Any(r => r.Kind == record.Kind && !r.FromLog) || kept.Any(r => r.Kind == record.Kind && r.FromLog));
            if (!redundant)
            {
                kept.Add(record);
            }
        }

        return kept;
    }

    private static TraceRecord? Newest(string directory, Func<TraceEventKind, UInt128, bool> wanted, Func<TraceRecord, bool> keep, CancellationToken cancellationToken) =>
        Scan(directory, wanted, keep, stopAfter: segment => segment.Count > 0, cancellationToken).LastOrDefault();

    /// <summary>The matching records, oldest first (stable by time); segments are read newest first until <paramref name="stopAfter"/> says enough.</summary>
    private static List<TraceRecord> Scan(string directory, Func<TraceEventKind, UInt128, bool> wanted, Func<TraceRecord, bool> keep, Func<List<TraceRecord>, bool> stopAfter, CancellationToken cancellationToken)
    {
        var found = new List<List<TraceRecord>>();
        List<TraceSegment> segments = TraceSegment.List(directory);
        for (int i = segments.Count - 1; i >= 0; i--)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var inSegment = new List<TraceRecord>();
            TraceSegmentReader.Read(segments[i].Path, wanted, record =>
            {
                if (keep(record))
                {
                    inSegment.Add(record);
                }
            });
            found.Add(inSegment);
            if (stopAfter(inSegment))
            {
                break;
            }
        }

        found.Reverse();
        return [.. found.SelectMany(s => s).OrderBy(r => r.AtMs)];
    }
}
