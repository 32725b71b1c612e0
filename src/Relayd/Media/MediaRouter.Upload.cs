using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using Relayd.Admission;
using Relayd.Hosting;
using Relayd.Protocol.Framing;
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
    private readonly AdmissionPipeline _admission = AdmissionPipelines.MediaOpen();

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

            // The recipient is sent this MediaOpen with delivery_offset added; chunks are far below any declared limit.
            RecipientFrameBytes = ProtoWire.LengthDelimitedFieldSize(MediaOpenFrameField, open.CalculateSize() + MaxDeliveryOffsetFieldBytes),
            Sha256Length = open.Sha256.Length,
            DeclaredMediaBytes = open.TotalSize,
            SenderMediaLimitBytes = _maxBytes[sender.Index],
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
        var transfer = new MediaTransfer(id, open, sender, recipient, _spool.BasePath(recipient.Id, sender.Id, id), expiresAt)
        {
            Uploader = peer,
            CreditLimit = Math.Min(size, _options.WindowBytes),
        };
        transfer.CreditAnnounced = transfer.CreditLimit;
        lock (_lock)
        {
            if (_transfers.ContainsKey((sender.Index, id)))
            {
                Refuse(peer, id, ErrorCode.MediaTransferExists, "a transfer with this id is open or spooled; resume it with MediaResume");
                return;
            }

            if (_openTransfers[sender.Index] >= _options.MaxConcurrentTransfersPerPartner)
            {
                Refuse(peer, id, ErrorCode.MediaTooManyTransfers, $"partner '{sender.Id}' already has {_openTransfers[sender.Index]} transfers open", retryAfterMs: 1000);
                return;
            }

            if (_spoolBytes[sender.Index] + size > _options.SpoolQuotaBytesPerPartner)
            {
                Refuse(peer, id, ErrorCode.SpoolFull, $"spool quota of partner '{sender.Id}': {_spoolBytes[sender.Index]} of {_options.SpoolQuotaBytesPerPartner} bytes in use, {size} more requested", retryAfterMs: 60_000);
                return;
            }

            _openTransfers[sender.Index]++;
            _spoolBytes[sender.Index] += size;
            _transfers.Add((sender.Index, id), transfer);
        }

        try
        {
            transfer.Part = MediaSpool.Create(transfer.BasePath, open);
            transfer.Hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, ex);
            Abort(transfer);
            Refuse(peer, id, ErrorCode.StorageFull, "the relay cannot write its media spool", retryAfterMs: 60_000);
            return;
        }

        RelayLog.MediaOpened(_logger, peer.ConnectionId, sender.Id, recipient.Id, size);
        bool cutThrough;
        lock (_lock)
        {
            // Recipient connected: its session starts streaming now, following the bytes as they arrive. A session that
            // attaches from here on finds the files there and queues it itself.
            transfer.Streamable = true;
            cutThrough = _peers[recipient.Index].Count > 0 && transfer.State == MediaTransferState.Receiving
                && transfer.Downloader is null && !_outbox[recipient.Index].Contains(transfer);
            if (cutThrough)
            {
                _outbox[recipient.Index].AddLast(transfer);
            }
        }

        if (cutThrough)
        {
            WakeRecipient(recipient.Index);
        }

        if (transfer.CreditLimit > 0)
        {
            peer.Reply(new Frame { MediaCredit = new MediaCredit { TransferId = open.TransferId, Bytes = (ulong)transfer.CreditLimit } });
        }
    }

    /// <summary>One MediaChunk; <paramref name="data"/> is a slice of the session's input pipe, written out before returning.</summary>
    public void Chunk(IMediaPeer peer, UInt128 id, ulong offset, in ReadOnlySequence<byte> data)
    {
        MediaTransfer? transfer = Find(peer.Partner.Index, id);
        if (transfer is null)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "no open transfer with this id");
            return;
        }

        lock (transfer)
        {
            if (transfer.State != MediaTransferState.Receiving)
            {
                if (transfer.State == MediaTransferState.Gone)
                {
                    Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "the transfer was aborted");
                }

                // A chunk after a close the relay already accepted: nothing to do with it.
                return;
            }

            if (transfer.AwaitingResume)
            {
                return;
            }

            long end = (long)offset + data.Length;
            if ((long)offset != transfer.Received)
            {
                transfer.AwaitingResume = true;
                Refuse(peer, id, ErrorCode.MediaOffsetMismatch, $"chunk at offset {offset}, the next offset is {transfer.Received}; send MediaResume");
                return;
            }

            if (end > transfer.TotalSize)
            {
                transfer.AwaitingResume = true;
                Refuse(peer, id, ErrorCode.MediaTooLarge, $"chunk ends at {end}, beyond the declared size {transfer.TotalSize}");
                return;
            }

            if (end > transfer.CreditLimit)
            {
                transfer.AwaitingResume = true;
                Refuse(peer, id, ErrorCode.MediaCreditExceeded, $"chunk ends at {end}, beyond the granted window ending at {transfer.CreditLimit}");
                return;
            }

            if (transfer.Part is null || transfer.Hash is null)
            {
                transfer.AwaitingResume = true;
                Refuse(peer, id, ErrorCode.MediaOffsetMismatch, "the relay restarted; send MediaResume");
                return;
            }

            long position = (long)offset;
            try
            {
                foreach (ReadOnlyMemory<byte> segment in data)
                {
                    RandomAccess.Write(transfer.Part, segment.Span, position);
                    transfer.Hash.AppendData(segment.Span);
                    position += segment.Length;
                }
            }
            catch (IOException ex)
            {
                FailSpool(peer, transfer, ex, "the relay could not write the media spool; the transfer is aborted");
                return;
            }

            if ((end >> WritebackShift) != ((long)offset >> WritebackShift))
            {
                long block = (end >> WritebackShift) << WritebackShift;
                MediaSpool.StartWriteback(transfer.Part, block - (1L << WritebackShift), 1L << WritebackShift);
            }

            transfer.Received = end;
            transfer.LastActivityTicks = Environment.TickCount64;
            transfer.Forward?.Append((long)offset, data);
            transfer.Downloader?.WakeMediaWriter();

            // Going only to the spool, the disk paces the sender. While a recipient takes the chunks as they come, the
            // writer forwarding them grants credit instead (OnForwarded): the slowest link paces the sender.
            if (transfer.Forward is null)
            {
                GrantCredit(transfer, end);
            }
        }
    }

    /// <summary>
    /// Under <c>lock(transfer)</c>: lets the sender go up to a window beyond <paramref name="basis"/>, announced once
    /// half a window or the rest of the blob is due (like HTTP/2 WINDOW_UPDATE).
    /// </summary>
    private void GrantCredit(MediaTransfer transfer, long basis)
    {
        long limit = Math.Min(basis + _options.WindowBytes, transfer.TotalSize);
        if (limit - transfer.CreditLimit >= _options.WindowBytes / 2 || (limit == transfer.TotalSize && limit > transfer.CreditLimit))
        {
            transfer.CreditLimit = limit;
            transfer.LastActivityTicks = Environment.TickCount64; // the sender's idle clock starts when it may send
            transfer.Uploader?.AnnounceCredit(transfer);
        }
    }

    /// <summary>
    /// For the uploader's writer: credit granted since the last announcement (0 when none is due, or when
    /// <paramref name="peer"/> no longer sends this transfer), now counted as announced.
    /// </summary>
    public static long TakeCreditGrant(MediaTransfer transfer, IMediaPeer peer)
    {
        lock (transfer)
        {
            if (transfer.Uploader != peer || transfer.State != MediaTransferState.Receiving)
            {
                return 0;
            }

            long grant = transfer.CreditLimit - transfer.CreditAnnounced;
            transfer.CreditAnnounced = transfer.CreditLimit;
            return grant;
        }
    }

    /// <summary>MediaClose from the sender: checks size and digest, fsyncs, and only then acknowledges with MediaComplete.</summary>
    public void Close(IMediaPeer peer, MediaClose close)
    {
        UInt128 id = MediaChunkWire.ReadTransferId(close.TransferId);
        MediaTransfer? transfer = Find(peer.Partner.Index, id);
        if (transfer is null)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "no open transfer with this id");
            return;
        }

        lock (transfer)
        {
            if (transfer.State is MediaTransferState.Spooled or MediaTransferState.Sending or MediaTransferState.Sent)
            {
                // A repeated close (the first answer was lost with the connection): same answer.
                peer.Reply(Complete(transfer));
                return;
            }

            if (transfer.State == MediaTransferState.Gone)
            {
                Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "the transfer was aborted");
                return;
            }

            if (transfer.AwaitingResume || transfer.Received != transfer.TotalSize || transfer.Hash is null || transfer.Part is null)
            {
                Refuse(peer, id, ErrorCode.MediaOffsetMismatch, $"closed at {transfer.Received} of {transfer.TotalSize} bytes; send MediaResume");
                return;
            }

            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            transfer.Hash.GetHashAndReset(digest);
            if (!digest.SequenceEqual(transfer.Open.Sha256.Span))
            {
                // The code before the state: the recipient's writer reads both without the lock, state first.
                transfer.AbortCode = ErrorCode.MediaDigestMismatch;
                transfer.State = MediaTransferState.Gone;
                RelayLog.MediaDigestMismatch(_logger, peer.ConnectionId, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
                Refuse(peer, id, ErrorCode.MediaDigestMismatch, "the SHA-256 of the bytes received is not the declared one; the blob is discarded");
                AbortOutsideLock(transfer);
                return;
            }

            try
            {
                MediaSpool.Commit(transfer.Part, transfer.BasePath);
                transfer.Part = null;
                transfer.ReleaseReceiving();
            }
            catch (IOException ex)
            {
                FailSpool(peer, transfer, ex, "the relay could not make the blob durable; the transfer is aborted");
                return;
            }

            lock (_lock)
            {
                _openTransfers[transfer.Sender.Index]--;
                if (transfer.Downloader is not null)
                {
                    // Streamed while it arrived: the session sends MediaClose now that the blob is verified.
                    transfer.State = MediaTransferState.Sending;
                }
                else
                {
                    transfer.State = MediaTransferState.Spooled;
                    if (!_outbox[transfer.Recipient.Index].Contains(transfer))
                    {
                        _outbox[transfer.Recipient.Index].AddLast(transfer);
                    }
                }
            }
        }

        RelayLog.MediaSpooled(_logger, peer.ConnectionId, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
        peer.Reply(Complete(transfer));
        WakeRecipient(transfer.Recipient.Index);
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

        MediaTransfer? transfer = Find(peer.Partner.Index, id);
        if (transfer is null || transfer.State == MediaTransferState.Gone)
        {
            Refuse(peer, id, ErrorCode.MediaUnknownTransfer, "no such transfer: never opened, timed out, expired or delivered");
            return;
        }

        lock (transfer)
        {
            if (transfer.State != MediaTransferState.Receiving)
            {
                peer.Reply(new Frame { MediaResumed = new MediaResumed { TransferId = resume.TransferId, NextOffset = (ulong)transfer.TotalSize, Complete = true } });
                return;
            }

            try
            {
                transfer.Part ??= MediaSpool.OpenPart(transfer.BasePath);
                if (transfer.Hash is null)
                {
                    // After a restart: the running digest is rebuilt from what is on disk (the final check covers it).
                    transfer.Hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    Rehash(transfer);
                }

                // "Durable" is literal: the offset reported is on disk.
                RandomAccess.FlushToDisk(transfer.Part);
            }
            catch (IOException ex)
            {
                FailSpool(peer, transfer, ex, "the relay could not read back the partial blob; the transfer is aborted");
                return;
            }

            transfer.AwaitingResume = false;
            transfer.Uploader = peer;
            transfer.LastActivityTicks = Environment.TickCount64;
            // While forwarding, the window runs from what the recipient has, as for chunks.
            long basis = transfer.Forward is null ? transfer.Received : transfer.Forwarded;
            transfer.CreditLimit = Math.Max(transfer.Received, Math.Min(basis + _options.WindowBytes, transfer.TotalSize));
            transfer.CreditAnnounced = transfer.CreditLimit;
            RelayLog.MediaResumed(_logger, peer.ConnectionId, transfer.Sender.Id, transfer.Received, transfer.TotalSize);
            peer.Reply(new Frame
            {
                MediaResumed = new MediaResumed
                {
                    TransferId = resume.TransferId,
                    NextOffset = (ulong)transfer.Received,
                    Credit = (ulong)(transfer.CreditLimit - transfer.Received),
                },
            });
        }
    }


    /// <summary>
    /// Under <c>lock(transfer)</c>: the spool failed this transfer (disk full or broken). It is dropped, the sender is
    /// told with STORAGE_FULL, and a recipient that was streaming it is told to discard what it got.
    /// </summary>
    private void FailSpool(IMediaPeer peer, MediaTransfer transfer, IOException exception, string detail)
    {
        RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, exception);
        transfer.AbortCode = ErrorCode.StorageFull;
        transfer.State = MediaTransferState.Gone;
        Refuse(peer, transfer.Id, ErrorCode.StorageFull, detail, retryAfterMs: 60_000);
        AbortOutsideLock(transfer);
    }

    private static void Rehash(MediaTransfer transfer)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1024 * 1024);
        try
        {
            long position = 0;
            while (position < transfer.Received)
            {
                int read = RandomAccess.Read(transfer.Part!, buffer.AsSpan(0, (int)Math.Min(buffer.Length, transfer.Received - position)), position);
                if (read == 0)
                {
                    // The file is shorter than recorded: continue from its real end.
                    transfer.Received = position;
                    break;
                }

                transfer.Hash!.AppendData(buffer, 0, read);
                position += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
