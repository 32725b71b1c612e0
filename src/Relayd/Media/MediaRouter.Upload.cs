using System.Buffers;
using System.Diagnostics;
using Relayd.Admission;
using Relayd.Diagnostics;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Media;

/// <summary>The sender side: MediaOpen, chunks into the spool, MediaClose, MediaResume.</summary>
internal sealed partial class MediaRouter
{
    // Frame.media_open is field 16 (a two-byte tag); MediaOpen.delivery_offset (field 11) is a tag and a varint.
    private const int MediaOpenFrameField = 16;
    private const int MaxDeliveryOffsetFieldBytes = 1 + 10;

    // The MediaOpen rules (AdmissionPipelines.MediaOpen); the checks on open transfers stay in Open, under _lock.
    private readonly AdmissionPipeline _admission;

    /// <summary>MediaOpen from a sender: every limit is checked here, before any byte of the blob is accepted.</summary>
    public void Open(IMediaPeer peer, MediaOpen open)
    {
        UInt128 id = MediaChunkWire.ReadTransferId(open.TransferId);
        PartnerInfo sender = peer.Partner;
        PartnerInfo? recipient = _partners.Find(open.RecipientPartner);
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        var request = new AdmissionRequest
        {
            Subject = AdmissionSubject.MediaOpen,
            Sender = sender,
            SenderPartnerText = open.SenderPartner,
            Recipient = recipient,
            RecipientPartnerText = open.RecipientPartner,
            ContentKind = (int)open.ContentKind,
            SenderUser = new ReadOnlySequence<byte>(open.SenderUser.Memory),
            RecipientUser = new ReadOnlySequence<byte>(open.RecipientUser.Memory),
            Bytes = (long)Math.Min(open.TotalSize, long.MaxValue),

            // The recipient is sent this MediaOpen with delivery_offset added; chunks are far below any declared limit.
            RecipientFrameBytes = ProtoWire.LengthDelimitedFieldSize(MediaOpenFrameField, open.CalculateSize() + MaxDeliveryOffsetFieldBytes),
            Sha256Length = open.Sha256.Length,
            DeclaredMediaBytes = open.TotalSize,
            SenderMediaLimitBytes = StateOf(sender).MaxBytes,
            ExpiresAtMs = open.ExpiresAtMs,
            NowMs = now,
        };
        if (!_admission.Admit(request, out AdmissionRefusal refusal))
        {
            Refuse(peer, id, refusal.Code, refusal.Detail, refusal.RetryAfterMs);
            return;
        }

        Debug.Assert(recipient is not null, "admitted: the recipient rule refuses an unknown recipient_partner");
        long size = (long)open.TotalSize;
        long expiresAt = open.ExpiresAtMs != 0 ? open.ExpiresAtMs : now + (long)_limits.DefaultRetention.TotalMilliseconds;
        var transfer = MediaTransfer.Opened(id, open, sender, recipient, _spool.BasePath(recipient.Id, sender.Id, id), expiresAt, peer, _options.WindowBytes);
        lock (_lock)
        {
            MediaPartnerState quota = StateOf(sender);
            if (quota.Transfers.ContainsKey(id))
            {
                Refuse(peer, id, ErrorCode.MediaTransferExists, "a transfer with this id is open or spooled; resume it with MediaResume");
                return;
            }

            if (quota.OpenTransfers >= _options.MaxConcurrentTransfersPerPartner)
            {
                Refuse(peer, id, ErrorCode.MediaTooManyTransfers, $"partner '{sender.Id}' already has {quota.OpenTransfers} transfers open", retryAfterMs: 1000);
                return;
            }

            if (quota.SpoolBytes + size > _options.SpoolQuotaBytesPerPartner)
            {
                Refuse(peer, id, ErrorCode.SpoolFull, $"spool quota of partner '{sender.Id}': {quota.SpoolBytes} of {_options.SpoolQuotaBytesPerPartner} bytes in use, {size} more requested", retryAfterMs: 60_000);
                return;
            }

            quota.OpenTransfers++;
            quota.SpoolBytes += size;
            quota.Transfers.Add(id, transfer);
        }

        try
        {
            transfer.StartReceiving(_spool);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, ex);
            Abort(transfer);
            Refuse(peer, id, ErrorCode.StorageFull, "the relay cannot write its media spool", retryAfterMs: 60_000);
            return;
        }

        RelayLog.MediaOpened(_logger, peer.ConnectionId, sender.Id, recipient.Id, size);
        Report(Routing.MediaEventKind.Opened, transfer, 0, peer.ConnectionId);
        bool cutThrough;
        lock (_lock)
        {
            // Recipient connected: its session starts streaming now, following the bytes as they arrive. A session that
            // attaches from here on finds the files there and queues it itself.
            transfer.MarkStreamable();
            MediaPartnerState to = StateOf(recipient);
            cutThrough = to.Peers.Count > 0 && transfer.AwaitsEarlyDelivery && !to.Outbox.Contains(transfer);
            if (cutThrough)
            {
                to.Outbox.AddLast(transfer);
            }
        }

        if (cutThrough)
        {
            WakeRecipient(recipient);
        }

        if (transfer.CreditLimit > 0)
        {
            peer.Reply(new Frame { MediaCredit = new MediaCredit { TransferId = open.TransferId, Bytes = (ulong)transfer.CreditLimit } });
        }
    }

    /// <summary>One MediaChunk; <paramref name="data"/> is a slice of the session's input pipe, written out before returning.</summary>
    public void Chunk(IMediaPeer peer, UInt128 id, ulong offset, in ReadOnlySequence<byte> data)
    {
        MediaTransfer? transfer = Find(peer.Partner, id);
        if (transfer is null)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "no open transfer with this id");
            return;
        }

        ChunkOutcome outcome = transfer.AcceptChunk(_spool, (long)offset, data, out long expected, out IOException? error);
        long end = (long)offset + data.Length;
        switch (outcome)
        {
            case ChunkOutcome.Accepted:
                _metrics.MediaBytes.Add(data.Length);
                if (!_support.IsEmpty && CrossesProgressStep((long)offset, end, transfer.TotalSize))
                {
                    Report(Routing.MediaEventKind.Progress, transfer, end, peer.ConnectionId);
                }

                return;
            case ChunkOutcome.Ignored:
                return;
            case ChunkOutcome.Aborted:
                Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "the transfer was aborted");
                return;
            case ChunkOutcome.OffsetMismatch:
                Refuse(peer, id, ErrorCode.MediaOffsetMismatch, $"chunk at offset {offset}, the next offset is {expected}; send MediaResume");
                return;
            case ChunkOutcome.BeyondSize:
                Refuse(peer, id, ErrorCode.MediaTooLarge, $"chunk ends at {end}, beyond the declared size {transfer.TotalSize}");
                return;
            case ChunkOutcome.BeyondCredit:
                Refuse(peer, id, ErrorCode.MediaCreditExceeded, $"chunk ends at {end}, beyond the granted window ending at {expected}");
                return;
            case ChunkOutcome.NotResumed:
                Refuse(peer, id, ErrorCode.MediaOffsetMismatch, "the relay restarted; send MediaResume");
                return;
            default:
                FailSpool(peer, transfer, error!, "the relay could not write the media spool; the transfer is aborted");
                return;
        }
    }

    /// <summary>MediaClose from the sender: checks size and digest, fsyncs, and only then acknowledges with MediaComplete.</summary>
    public void Close(IMediaPeer peer, MediaClose close)
    {
        UInt128 id = MediaChunkWire.ReadTransferId(close.TransferId);
        MediaTransfer? transfer = Find(peer.Partner, id);
        if (transfer is null)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "no open transfer with this id");
            return;
        }

        switch (transfer.Complete(_spool, out IOException? error))
        {
            case CloseOutcome.AlreadyComplete:
                // A repeated close (the first answer was lost with the connection): same answer.
                peer.Reply(Complete(transfer));
                return;
            case CloseOutcome.Aborted:
                Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "the transfer was aborted");
                return;
            case CloseOutcome.Incomplete:
                Refuse(peer, id, ErrorCode.MediaOffsetMismatch, $"closed at {transfer.Received} of {transfer.TotalSize} bytes; send MediaResume");
                return;
            case CloseOutcome.DigestMismatch:
                RelayLog.MediaDigestMismatch(_logger, peer.ConnectionId, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
                AbortOutsideLock(transfer); // first: the refusal says the blob is discarded
                Refuse(peer, id, ErrorCode.MediaDigestMismatch, "the SHA-256 of the bytes received is not the declared one; the blob is discarded");
                return;
            case CloseOutcome.SpoolFailed:
                FailSpool(peer, transfer, error!, "the relay could not make the blob durable; the transfer is aborted");
                return;
        }

        lock (_lock)
        {
            StateOf(transfer.Sender).OpenTransfers--;

            // Unless a recipient session streamed it while it arrived (it sends MediaClose now), or it went meanwhile.
            LinkedList<MediaTransfer> outbox = StateOf(transfer.Recipient).Outbox;
            if (transfer.State == MediaTransferState.Spooled && !outbox.Contains(transfer))
            {
                outbox.AddLast(transfer);
            }
        }

        RelayLog.MediaSpooled(_logger, peer.ConnectionId, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
        Report(Routing.MediaEventKind.Complete, transfer, transfer.TotalSize, peer.ConnectionId);
        peer.Reply(Complete(transfer));
        WakeRecipient(transfer.Recipient);
    }

    /// <summary>
    /// MediaResume. From the sender (no sender_partner, or its own): answers with the next durable offset and a fresh
    /// window. From the recipient (sender_partner names the sender): restarts the download at the offset it asks for.
    /// </summary>
    public void Resume(IMediaPeer peer, MediaResume resume)
    {
        UInt128 id = MediaChunkWire.ReadTransferId(resume.TransferId);
        if (resume.SenderPartner.Length > 0 && resume.SenderPartner != peer.Partner.Id)
        {
            ResumeDownload(peer, id, resume);
            return;
        }

        MediaTransfer? transfer = Find(peer.Partner, id);
        if (transfer is null || transfer.State == MediaTransferState.Gone)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "no such transfer: never opened, timed out, expired or delivered");
            return;
        }

        if (!transfer.ResumeUpload(_spool, peer, out long next, out long credit, out IOException? error))
        {
            if (error is not null)
            {
                FailSpool(peer, transfer, error, "the relay could not read back the partial blob; the transfer is aborted");
            }
            else
            {
                peer.Reply(new Frame { MediaResumed = new MediaResumed { TransferId = resume.TransferId, NextOffset = (ulong)transfer.TotalSize, Complete = true } });
            }

            return;
        }

        RelayLog.MediaResumed(_logger, peer.ConnectionId, transfer.Sender.Id, next, transfer.TotalSize);
        peer.Reply(new Frame
        {
            MediaResumed = new MediaResumed
            {
                TransferId = resume.TransferId,
                NextOffset = (ulong)next,
                Credit = (ulong)credit,
            },
        });
    }

    /// <summary>Progress is reported about every 1 MiB or 10% of the blob, whichever is smaller: not every chunk.</summary>
    private static bool CrossesProgressStep(long from, long to, long total)
    {
        long step = Math.Max(64 * 1024, Math.Min(1024 * 1024, total / 10));
        return from / step != to / step && to < total; // the last chunk's is Complete's
    }

    /// <summary>
    /// The spool failed this transfer (disk full or broken), which is Gone now: the sender is told with STORAGE_FULL,
    /// and a recipient that was streaming it is told to discard what it got.
    /// </summary>
    private void FailSpool(IMediaPeer peer, MediaTransfer transfer, IOException exception, string detail)
    {
        RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, exception);
        AbortOutsideLock(transfer);
        Refuse(peer, transfer.Id, ErrorCode.StorageFull, detail, retryAfterMs: 60_000);
    }
}
