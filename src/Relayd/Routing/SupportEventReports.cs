using System.Buffers;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// Where a shard queue reports an envelope it took (<see cref="ISupportEvents.EnvelopeAccepted"/>); default: nowhere.
/// A small struct passed by reference: nothing allocated per envelope.
/// </summary>
internal readonly struct AcceptedReport(SupportEvents? support, PartnerInfo recipient, long connectionId)
{
    public void Report(in ReadOnlySequence<byte> frame, in EnvelopeHeader header, PartnerInfo? sender, int shard, bool logOnly, long acceptedAtMs, Storage.DurableMark durableAt)
    {
        if (support is null || support.IsEmpty || sender is null)
        {
            return;
        }

        support.EnvelopeAccepted(new AcceptedEnvelope
        {
            Sender = sender,
            ConnectionId = connectionId,
            MessageId = header.MessageId,
            Recipient = recipient,
            SenderUser = frame.Slice(header.SenderUser.Offset, header.SenderUser.Length),
            RecipientUser = frame.Slice(header.RecipientUser.Offset, header.RecipientUser.Length),
            Ciphertext = frame.Slice(header.Ciphertext.Offset, header.Ciphertext.Length),
            FrameBytes = (int)frame.Length,
            Shard = shard,
            LogOnly = logOnly,
            AcceptedAtMs = acceptedAtMs,
            DurableAt = durableAt,
        });
    }
}

/// <summary>Support events derived from a batch of settled envelopes (the data path's lists, no allocation).</summary>
internal static class SupportEventReports
{
    /// <summary>
    /// Reports the envelopes of <paramref name="settled"/> (queued for <paramref name="recipient"/>) that were settled
    /// without a delivery: EXPIRED ones as <see cref="ISupportEvents.EnvelopeExpired"/>, REFUSED ones as
    /// <see cref="ISupportEvents.EnvelopeRefusedQueued"/>.
    /// </summary>
    public static void ReportUndelivered(this SupportEvents support, List<SettledEnvelope> settled, PartnerInfo recipient, long nowMs)
    {
        if (support.IsEmpty)
        {
            return;
        }

        foreach (SettledEnvelope envelope in settled)
        {
            if (envelope.Receipt.Status == ReceiptStatus.ExpiredUndelivered)
            {
                support.EnvelopeExpired(envelope.Sender, envelope.Receipt.MessageId, recipient, nowMs);
            }
            else if (envelope.Receipt.Status == ReceiptStatus.Refused)
            {
                support.EnvelopeRefusedQueued(envelope.Sender, envelope.Receipt.MessageId, recipient, envelope.Receipt.Code, nowMs);
            }
        }
    }

    /// <summary>A short stable word for why a session ended (<see cref="ISupportEvents.SessionClosed"/>), from its close code and reason text.</summary>
    public static string CloseWord(ErrorCode closeCode, bool writeStalled, string reason) =>
        writeStalled ? "stalled"
        : closeCode == ErrorCode.IdleTimeout ? "idle"
        : closeCode == ErrorCode.ShuttingDown ? "stopping"
        : reason.StartsWith("closed by peer", StringComparison.Ordinal) ? "eof"
        : reason.StartsWith("GoAway", StringComparison.Ordinal) ? "goaway"
        : reason.StartsWith("connection lost", StringComparison.Ordinal) ? "lost"
        : closeCode != ErrorCode.Unspecified ? "closed"
        : "error";
}
