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
            LinkedList<MediaTransfer> outbox = _outbox[peer.Partner.Index];
            if (outbox.First is not { } node)
            {
                return null;
            }

            outbox.RemoveFirst();
            MediaTransfer transfer = node.Value;
            if (transfer.State == MediaTransferState.Spooled)
            {
                transfer.State = MediaTransferState.Sending;
            }

            transfer.Downloader = peer;
            return transfer;
        }
    }

    /// <summary>True while <paramref name="peer"/> still owns the delivery of <paramref name="transfer"/>.</summary>
    public static bool IsSending(MediaTransfer transfer, IMediaPeer peer) =>
        transfer.Downloader == peer && transfer.State is MediaTransferState.Sending or MediaTransferState.Receiving;

    /// <summary>The session wrote the MediaClose; the blob now waits for MediaReceived.</summary>
    public void MarkSent(MediaTransfer transfer, IMediaPeer peer)
    {
        lock (_lock)
        {
            if (IsSending(transfer, peer) && transfer.State == MediaTransferState.Sending)
            {
                transfer.State = MediaTransferState.Sent;
            }
        }
    }

    /// <summary>
    /// Cut-through: <paramref name="peer"/>'s writer has sent everything the spool holds so far, so from now on the
    /// sender's read loop also copies each chunk into <paramref name="queue"/>, and the writer sends from there
    /// instead of reading the file back. False when the sender got ahead again meanwhile (keep reading the file).
    /// </summary>
    public static bool TryStartForwarding(MediaTransfer transfer, IMediaPeer peer, MediaForwardQueue queue, long offset)
    {
        lock (transfer)
        {
            if (transfer.State != MediaTransferState.Receiving || transfer.Downloader != peer || transfer.Received != offset || transfer.Forward is not null)
            {
                return false;
            }

            queue.Begin(transfer.Id);
            transfer.Forward = queue;
            transfer.Forwarded = offset;
            transfer.ForwardedTicks = Environment.TickCount64;
            return true;
        }
    }

    /// <summary>
    /// The forwarding writer has written the blob up to <paramref name="end"/> to the recipient's connection: the
    /// sender gets credit up to a window beyond it, so it never runs more than a window ahead of the recipient.
    /// </summary>
    public void OnForwarded(MediaTransfer transfer, long end)
    {
        transfer.Forwarded = end;
        transfer.ForwardedTicks = Environment.TickCount64;
        long limit = transfer.CreditLimit;
        if (limit >= transfer.TotalSize || limit - end > _options.WindowBytes / 2)
        {
            return;
        }

        lock (transfer)
        {
            if (transfer.State == MediaTransferState.Receiving && transfer.Forward is not null)
            {
                GrantCredit(transfer, end);
            }
        }
    }

    /// <summary>
    /// The writer stops forwarding (blob sent, recipient gone, or the router gave up on it): the queue is emptied and
    /// a sender still uploading is paced by the spool again.
    /// </summary>
    public void StopForwarding(MediaTransfer transfer, MediaForwardQueue queue)
    {
        lock (transfer)
        {
            if (transfer.Forward == queue)
            {
                Unforward(transfer);
            }
        }

        queue.Reset();
    }

    // Under lock(transfer): chunks go only to the spool from now on; the forwarding writer notices and resets its queue.
    private void Unforward(MediaTransfer transfer)
    {
        transfer.Forward = null;
        if (transfer.State == MediaTransferState.Receiving)
        {
            GrantCredit(transfer, transfer.Received);
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
        IMediaPeer? uploader;
        bool receiving;
        lock (transfer)
        {
            lock (_lock)
            {
                if (!IsSending(transfer, peer))
                {
                    return;
                }

                // The code first: a writer that sees Gone reads it without the lock.
                transfer.AbortCode = ErrorCode.StorageFull;
                receiving = transfer.State == MediaTransferState.Receiving;
                uploader = transfer.Uploader;
            }

            RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, exception);
            if (receiving)
            {
                transfer.State = MediaTransferState.Gone;
                AbortOutsideLock(transfer);
            }
        }

        if (receiving)
        {
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
        MediaTransfer? transfer = sender is null ? null : Find(sender.Index, id);
        if (transfer is null || transfer.Recipient != peer.Partner || transfer.State is not (MediaTransferState.Sent or MediaTransferState.Sending or MediaTransferState.Spooled))
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, $"no transfer with this id from partner '{received.SenderPartner}' is waiting for partner '{peer.Partner.Id}'");
            return;
        }

        Remove(transfer);
        RelayLog.MediaDelivered(_logger, peer.ConnectionId, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
    }

    private void ResumeDownload(IMediaPeer peer, UInt128 id, MediaResume resume)
    {
        PartnerInfo? sender = _partners.Find(resume.SenderPartner);
        MediaTransfer? transfer = sender is null ? null : Find(sender.Index, id);
        if (transfer is null || transfer.Recipient != peer.Partner || transfer.State is MediaTransferState.Receiving or MediaTransferState.Gone)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, $"no spooled transfer with this id from partner '{resume.SenderPartner}' for partner '{peer.Partner.Id}'");
            return;
        }

        if (resume.Offset > (ulong)transfer.TotalSize)
        {
            Refuse(peer, id, ErrorCode.MediaOffsetMismatch, $"offset {resume.Offset} is beyond the blob's {transfer.TotalSize} bytes");
            return;
        }

        lock (_lock)
        {
            if (transfer.State == MediaTransferState.Spooled)
            {
                _outbox[peer.Partner.Index].Remove(transfer);
            }

            // Whoever was sending it stops at its next chunk (it checks IsSending); this session sends it first.
            transfer.State = MediaTransferState.Spooled;
            transfer.Downloader = null;
            transfer.DeliveryStartOffset = (long)resume.Offset;
            _outbox[peer.Partner.Index].AddFirst(transfer);
        }

        peer.WakeMediaWriter();
    }
}
