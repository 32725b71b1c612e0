using Relayd.Protocol.V1;

namespace Relayd.Support.Trace;

/// <summary>
/// TraceReply for a partner (docs/protocol.md, "Trace"): a message's events when the asking partner is its sender or
/// its recipient partner; for any other message, and for an unknown one, no events — the same bytes. No user id, no
/// hash of one, is in a TraceEvent.
/// </summary>
internal static class TraceReplies
{
    public static TraceReply For(MessageTrace? message, string askingPartner, ulong requestId)
    {
        var reply = new TraceReply { RequestId = requestId };
        if (message is null || (askingPartner != message.Sender && askingPartner != message.Recipient))
        {
            return reply;
        }

        foreach (TraceRecord record in message.Events)
        {
            if (record.Kind == TraceEventKind.TraceAccepted)
            {
                // Not written apart from ACCEPTED (the same session, size and time): given back as its own step.
                reply.Events.Add(new TraceEvent { Kind = TraceEventKind.TraceReceived, TimeUs = record.AtMs * 1000, Session = (ulong)record.Session, Bytes = (ulong)record.Bytes, FromLog = record.FromLog });
            }

            reply.Events.Add(new TraceEvent
            {
                Kind = record.Kind,
                TimeUs = record.AtMs * 1000,
                Session = (ulong)record.Session,
                Bytes = (ulong)record.Bytes,
                Code = record.Code,
                Detail = record.Detail ?? "",
                Shard = (uint)record.Shard,
                LogOnly = record.LogOnly,
                DeliveryId = record.Kind is TraceEventKind.TraceDelivered or TraceEventKind.TraceAcknowledged ? record.Number : 0,
                ReceiptStatus = record.Status,
                FromLog = record.FromLog,
            });
        }

        return reply;
    }
}
