using Microsoft.Win32.SafeHandles;
using Relayd.Diagnostics;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Media;

/// <summary>The recipient side: handing blobs to its sessions, cut-through forwarding, MediaReceived, download resume.</summary>
internal sealed partial class MediaRouter
{
    /// <summary>The next spooled blob for a session of the recipient partner, now marked as being sent by it.</summary>
    public MediaTransfer? TakeOutbound(IMediaPeer peer)
    {
        lock (_lock)
        {
            LinkedList<MediaTransfer> outbox = StateOf(peer.Partner).Outbox;
            if (outbox.First is not { } node)
            {
                return null;
            }

            outbox.RemoveFirst();
            MediaTransfer transfer = node.Value;
            transfer.BeginDelivery(peer);
            return transfer;
        }
    }

    /// <summary>
    /// Opens the blob's spool file for <paramref name="peer"/> to stream; null when it is not there: the transfer went
    /// away meanwhile (aborted, expired), or the file was lost, in which case the blob is dropped. A missing file never
    /// ends the session.
    /// </summary>
    public SafeFileHandle? OpenSpooled(MediaTransfer transfer, IMediaPeer peer)
    {
        try
        {
            return _spool.OpenForReading(transfer.BasePath, arriving: transfer.State == MediaTransferState.Receiving);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            DropUnreadable(transfer, peer, ex);
            return null;
        }
    }

    /// <summary>
    /// <paramref name="peer"/>'s writer could not read the spool file of a blob it is streaming. When the blob went away
    /// meanwhile (aborted or removed, its files deleted) that is why, and nothing is left to do. Otherwise the file
    /// was lost: the blob is dropped (a sender still uploading is told STORAGE_FULL) and the recipient, told the same,
    /// discards what it got.
    /// </summary>
    public void DropUnreadable(MediaTransfer transfer, IMediaPeer peer, Exception exception)
    {
        if (!transfer.TryFailDelivery(peer, out bool receiving, out IMediaPeer? uploader))
        {
            return;
        }

        RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, exception);
        Report(Routing.MediaEventKind.Failed, transfer, transfer.Received, peer.ConnectionId, ErrorCode.StorageFull, "the relay lost the spooled blob");
        if (receiving)
        {
            AbortOutsideLock(transfer);
            uploader?.Post(new Frame { Error = new Error { Code = ErrorCode.StorageFull, Detail = "the relay lost the partial blob; the transfer is aborted", RetryAfterMs = 60_000, TransferId = transfer.Open.TransferId } });
        }
        else
        {
            Remove(transfer);
        }

        peer.WakeMediaWriter();
    }

    /// <summary>MediaReceived from the recipient: the blob is stored on its side; delete the spool copy.</summary>
    public void Received(IMediaPeer peer, MediaReceived received)
    {
        UInt128 id = MediaChunkWire.ReadTransferId(received.TransferId);
        PartnerInfo? sender = _partners.Find(received.SenderPartner);
        MediaTransfer? transfer = sender is null ? null : Find(sender, id);
        if (transfer is null || transfer.Recipient != peer.Partner || transfer.State is not (MediaTransferState.Sent or MediaTransferState.Sending or MediaTransferState.Spooled))
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, $"no transfer with this id from partner '{received.SenderPartner}' is waiting for partner '{peer.Partner.Id}'", recipientSide: true);
            return;
        }

        Remove(transfer);
        RelayLog.MediaDelivered(_logger, peer.ConnectionId, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
        Report(Routing.MediaEventKind.Received, transfer, transfer.TotalSize, peer.ConnectionId);
    }

    private void ResumeDownload(IMediaPeer peer, UInt128 id, MediaResume resume)
    {
        PartnerInfo? sender = _partners.Find(resume.SenderPartner);
        MediaTransfer? transfer = sender is null ? null : Find(sender, id);
        if (transfer is null || transfer.Recipient != peer.Partner || transfer.State is MediaTransferState.Receiving or MediaTransferState.Gone)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, $"no spooled transfer with this id from partner '{resume.SenderPartner}' for partner '{peer.Partner.Id}'", recipientSide: true);
            return;
        }

        if (resume.Offset > (ulong)transfer.TotalSize)
        {
            Refuse(peer, id, ErrorCode.MediaOffsetMismatch, $"offset {resume.Offset} is beyond the blob's {transfer.TotalSize} bytes", recipientSide: true);
            return;
        }

        lock (_lock)
        {
            LinkedList<MediaTransfer> outbox = StateOf(peer.Partner).Outbox;
            if (transfer.State == MediaTransferState.Spooled)
            {
                outbox.Remove(transfer);
            }

            // Whoever was sending it stops at its next chunk (it checks IsDeliveringTo); this session sends it first.
            transfer.RestartDelivery((long)resume.Offset);
            outbox.AddFirst(transfer);
        }

        peer.WakeMediaWriter();
    }
}
