using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Relayd.Hosting;
using Relayd.Protocol;
using Relayd.Protocol.Framing;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Media;

/// <summary>
/// Every media transfer of the relay: accepts blobs from senders into the spool (checking size, quota, offsets,
/// credit and digest), hands verified blobs to a session of the recipient partner, and deletes them when the
/// recipient has them or they expire. Sessions call in from their read loops; a timer drops stalled transfers.
/// </summary>
/// <remarks>
/// Data path of one chunk: sender's input pipe → <see cref="MediaChunkWire.TryRead"/> slices the data in place →
/// <see cref="Chunk"/> writes each segment to the spool file (pwrite) and into the running SHA-256 → the pipe
/// buffer is released. Towards the recipient the session writer reads the file into one pooled buffer per session.
/// Nothing is allocated per chunk, and the relay holds at most the credit window per transfer in its socket buffers.
/// </remarks>
internal sealed class MediaRouter : IDisposable
{
    private readonly MediaOptions _options;
    private readonly PartnerDirectory _partners;
    private readonly RelayLimits _limits;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly MediaSpool _spool;
    private readonly long[] _maxBytes;
    private readonly Lock _lock = new();
    private readonly Dictionary<(int Sender, UInt128 Id), MediaTransfer> _transfers = [];
    private readonly int[] _openTransfers;
    private readonly long[] _spoolBytes;
    private readonly LinkedList<MediaTransfer>[] _outbox;
    private readonly List<IMediaPeer>[] _peers;
    private readonly Timer _sweeper;

    public MediaRouter(MediaOptions options, IList<PartnerOptions> partnerOptions, PartnerDirectory partners, RelayLimits limits, ILogger logger, TimeProvider clock)
    {
        _options = options;
        _partners = partners;
        _limits = limits;
        _logger = logger;
        _clock = clock;
        _spool = new MediaSpool(options.SpoolDirectory);
        int count = partners.Partners.Length;
        _maxBytes = [.. partnerOptions.Select(p => p.MaxMediaBytes ?? options.MaxBytes)];
        _openTransfers = new int[count];
        _spoolBytes = new long[count];
        _outbox = [.. Enumerable.Range(0, count).Select(_ => new LinkedList<MediaTransfer>())];
        _peers = [.. Enumerable.Range(0, count).Select(_ => new List<IMediaPeer>())];
        Recover();
        TimeSpan period = TimeSpan.FromMilliseconds(Math.Clamp(options.TransferIdleTimeout.TotalMilliseconds / 4, 25, 1000));
        _sweeper = new Timer(_ => Sweep(), null, period, period);
    }

    /// <summary>Bytes of one chunk the relay sends to recipients (below the large-object heap size of .NET clients).</summary>
    public const int DeliveryChunkBytes = 64 * 1024;

    // Writeback of spool files is started every 2^23 bytes = 8 MiB (see MediaSpool.StartWriteback).
    private const int WritebackShift = 23;

    public int TransferCount
    {
        get
        {
            lock (_lock)
            {
                return _transfers.Count;
            }
        }
    }

    public void Dispose() => _sweeper.Dispose();

    // ---------------------------------------------------------------- sessions

    /// <summary>A session of a partner started: media for that partner may now go to it.</summary>
    public void Attach(IMediaPeer peer)
    {
        lock (_lock)
        {
            _peers[peer.Partner.Index].Add(peer);
        }

        peer.WakeMediaWriter();
    }

    /// <summary>A session ended: what it was streaming goes back to the outbox, uploads wait for a resume.</summary>
    public void Detach(IMediaPeer peer)
    {
        int recipient = peer.Partner.Index;
        lock (_lock)
        {
            _peers[recipient].Remove(peer);
            foreach (MediaTransfer transfer in _transfers.Values)
            {
                if (transfer.Uploader == peer)
                {
                    transfer.Uploader = null;
                }

                if (transfer.Downloader == peer && transfer.State == MediaTransferState.Receiving)
                {
                    // Streaming while it arrived: it goes to the outbox when it is complete.
                    transfer.Downloader = null;
                }
                else if (transfer.Downloader == peer && transfer.State is MediaTransferState.Sending or MediaTransferState.Sent)
                {
                    // Not acknowledged: deliver again, to the next session of the partner, from the start.
                    transfer.Downloader = null;
                    transfer.State = MediaTransferState.Spooled;
                    transfer.DeliveryStartOffset = 0;
                    _outbox[recipient].AddFirst(transfer);
                }
            }
        }

        WakeRecipient(recipient);
    }

    // ---------------------------------------------------------------- sender side

    /// <summary>MediaOpen from a sender: every limit is checked here, before any byte of the blob is accepted.</summary>
    public void Open(IMediaPeer peer, MediaOpen open)
    {
        UInt128 id = MediaChunkWire.ReadTransferId(open.TransferId);
        PartnerInfo sender = peer.Partner;
        if (open.SenderPartner != sender.Id)
        {
            Refuse(peer, id, ErrorCode.SenderMismatch, $"sender_partner '{open.SenderPartner}' is not the authenticated partner '{sender.Id}'");
            return;
        }

        PartnerInfo? recipient = _partners.Find(open.RecipientPartner);
        if (recipient is null)
        {
            Refuse(peer, id, ErrorCode.UnknownRecipientPartner, $"no approved partner '{open.RecipientPartner}'");
            return;
        }

        if (!recipient.Accepts((int)open.ContentKind))
        {
            Refuse(peer, id, ErrorCode.ContentKindUnsupported, $"partner '{recipient.Id}' does not accept {open.ContentKind}");
            return;
        }

        if (open.Sha256.Length != SHA256.HashSizeInBytes)
        {
            Refuse(peer, id, ErrorCode.MalformedFrame, "sha256 must be 32 bytes");
            return;
        }

        long limit = _maxBytes[sender.Index];
        if (open.TotalSize > (ulong)limit)
        {
            Refuse(peer, id, ErrorCode.MediaTooLarge, $"declared size {open.TotalSize} exceeds the limit of {limit} bytes for partner '{sender.Id}'");
            return;
        }

        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (open.ExpiresAtMs != 0 && open.ExpiresAtMs <= now)
        {
            Refuse(peer, id, ErrorCode.Expired, "expires_at_ms is in the past");
            return;
        }

        long size = (long)open.TotalSize;
        long expiresAt = open.ExpiresAtMs != 0 ? open.ExpiresAtMs : now + (long)_limits.DefaultRetention.TotalMilliseconds;
        var transfer = new MediaTransfer(id, open, sender, recipient, _spool.BasePath(recipient.Id, sender.Id, id), expiresAt)
        {
            Uploader = peer,
            CreditLimit = Math.Min(size, _options.WindowBytes),
        };
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
            // Recipient connected: its session starts streaming now, following the bytes as they reach the spool.
            cutThrough = _peers[recipient.Index].Count > 0 && transfer.State == MediaTransferState.Receiving;
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
                RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, ex);
                transfer.State = MediaTransferState.Gone;
                transfer.AbortCode = ErrorCode.StorageFull;
                Refuse(peer, id, ErrorCode.StorageFull, "the relay could not write the media spool; the transfer is aborted", retryAfterMs: 60_000);
                AbortOutsideLock(transfer);
                return;
            }

            if ((end >> WritebackShift) != ((long)offset >> WritebackShift))
            {
                long block = (end >> WritebackShift) << WritebackShift;
                MediaSpool.StartWriteback(transfer.Part, block - (1L << WritebackShift), 1L << WritebackShift);
            }

            transfer.Received = end;
            transfer.LastActivityTicks = Environment.TickCount64;
            transfer.Downloader?.WakeMediaWriter();

            // Re-grant when half the window is used: like HTTP/2 WINDOW_UPDATE, one credit frame per half window.
            if (transfer.CreditLimit < transfer.TotalSize && transfer.CreditLimit - end <= _options.WindowBytes / 2)
            {
                long newLimit = Math.Min(end + _options.WindowBytes, transfer.TotalSize);
                ulong grant = (ulong)(newLimit - transfer.CreditLimit);
                transfer.CreditLimit = newLimit;
                peer.Reply(new Frame { MediaCredit = new MediaCredit { TransferId = transfer.Open.TransferId, Bytes = grant } });
            }
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
                transfer.State = MediaTransferState.Gone;
                transfer.AbortCode = ErrorCode.MediaDigestMismatch;
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
                RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, ex);
                transfer.State = MediaTransferState.Gone;
                Refuse(peer, id, ErrorCode.StorageFull, "the relay could not make the blob durable; the transfer is aborted", retryAfterMs: 60_000);
                AbortOutsideLock(transfer);
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
                RelayLog.MediaSpoolFailed(_logger, transfer.BasePath, ex);
                transfer.State = MediaTransferState.Gone;
                Refuse(peer, id, ErrorCode.StorageFull, "the relay could not read back the partial blob; the transfer is aborted", retryAfterMs: 60_000);
                AbortOutsideLock(transfer);
                return;
            }

            transfer.AwaitingResume = false;
            transfer.Uploader = peer;
            transfer.LastActivityTicks = Environment.TickCount64;
            transfer.CreditLimit = Math.Min(transfer.Received + _options.WindowBytes, transfer.TotalSize);
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

    // ---------------------------------------------------------------- recipient side

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

    // ---------------------------------------------------------------- housekeeping

    private MediaTransfer? Find(int sender, UInt128 id)
    {
        lock (_lock)
        {
            return _transfers.GetValueOrDefault((sender, id));
        }
    }

    private static Frame Complete(MediaTransfer transfer) =>
        new() { MediaComplete = new MediaComplete { TransferId = transfer.Open.TransferId, TotalSize = (ulong)transfer.TotalSize } };

    private void Refuse(IMediaPeer peer, UInt128 id, ErrorCode code, string detail, uint retryAfterMs = 0)
    {
        RelayLog.MediaRefused(_logger, peer.ConnectionId, peer.Partner.Id, code, detail);
        peer.Reply(new Frame { Error = new Error { Code = code, Detail = detail, RetryAfterMs = retryAfterMs, TransferId = MediaChunkWire.ToByteString(id) } });
    }

    /// <summary>Drops a transfer that is still arriving: files deleted, its slot and quota released.</summary>
    private void Abort(MediaTransfer transfer)
    {
        lock (transfer)
        {
            transfer.State = MediaTransferState.Gone;
        }

        AbortOutsideLock(transfer);
    }

    // Callers hold lock(transfer) or have set State = Gone under it; the files go last.
    private void AbortOutsideLock(MediaTransfer transfer)
    {
        IMediaPeer? downloader;
        lock (_lock)
        {
            if (_transfers.Remove((transfer.Sender.Index, transfer.Id)))
            {
                _openTransfers[transfer.Sender.Index]--;
                _spoolBytes[transfer.Sender.Index] -= transfer.TotalSize;
            }

            _outbox[transfer.Recipient.Index].Remove(transfer);
            downloader = transfer.Downloader;
        }

        // A recipient streaming it is told to discard what it got.
        downloader?.WakeMediaWriter();
        transfer.ReleaseReceiving();
        DeleteFiles(transfer.BasePath);
    }

    /// <summary>Removes a spooled (complete) transfer: delivered or expired.</summary>
    private void Remove(MediaTransfer transfer)
    {
        lock (_lock)
        {
            if (transfer.State == MediaTransferState.Spooled)
            {
                _outbox[transfer.Recipient.Index].Remove(transfer);
            }

            transfer.State = MediaTransferState.Gone;
            transfer.Downloader = null;
            if (_transfers.Remove((transfer.Sender.Index, transfer.Id)))
            {
                _spoolBytes[transfer.Sender.Index] -= transfer.TotalSize;
            }
        }

        DeleteFiles(transfer.BasePath);
    }

    private void DeleteFiles(string basePath)
    {
        try
        {
            MediaSpool.Delete(basePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RelayLog.MediaSpoolFailed(_logger, basePath, ex);
        }
    }

    private void WakeRecipient(int partner)
    {
        IMediaPeer[] peers;
        lock (_lock)
        {
            peers = [.. _peers[partner]];
        }

        foreach (IMediaPeer peer in peers)
        {
            peer.WakeMediaWriter();
        }
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

    /// <summary>Drops transfers whose sender went silent, and spooled blobs past their expiry.</summary>
    private void Sweep()
    {
        long nowTicks = Environment.TickCount64;
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        long idleMs = (long)_options.TransferIdleTimeout.TotalMilliseconds;
        List<MediaTransfer>? stalled = null;
        List<MediaTransfer>? expired = null;
        lock (_lock)
        {
            foreach (MediaTransfer transfer in _transfers.Values)
            {
                if (transfer.State == MediaTransferState.Receiving && nowTicks - transfer.LastActivityTicks > idleMs)
                {
                    (stalled ??= []).Add(transfer);
                }
                else if (transfer.State == MediaTransferState.Spooled && transfer.ExpiresAtMs <= nowMs)
                {
                    (expired ??= []).Add(transfer);
                }
            }
        }

        foreach (MediaTransfer transfer in stalled ?? [])
        {
            IMediaPeer? uploader;
            lock (transfer)
            {
                if (transfer.State != MediaTransferState.Receiving || nowTicks - transfer.LastActivityTicks <= idleMs)
                {
                    continue;
                }

                transfer.State = MediaTransferState.Gone;
                transfer.AbortCode = ErrorCode.MediaIdleTimeout;
                uploader = transfer.Uploader;
            }

            AbortOutsideLock(transfer);
            RelayLog.MediaIdleTimeout(_logger, transfer.Sender.Id, transfer.Received, transfer.TotalSize);
            uploader?.Post(new Frame
            {
                Error = new Error
                {
                    Code = ErrorCode.MediaIdleTimeout,
                    Detail = $"no chunk for {idleMs} ms; the partial blob is deleted",
                    TransferId = transfer.Open.TransferId,
                },
            });
        }

        foreach (MediaTransfer transfer in expired ?? [])
        {
            RelayLog.MediaExpired(_logger, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
            Remove(transfer);
        }
    }

    /// <summary>Loads what an earlier run left in the spool: verified blobs are delivered, partial ones await a resume.</summary>
    private void Recover()
    {
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if (!Directory.Exists(_spool.Directory))
        {
            return;
        }

        int blobs = 0;
        int partials = 0;
        foreach (SpooledFile file in _spool.Scan())
        {
            PartnerInfo? sender = file.Open is null ? null : _partners.Find(file.Open.SenderPartner);
            PartnerInfo? recipient = file.Open is null ? null : _partners.Find(file.Open.RecipientPartner);
            if (file.Open is null || sender is null || recipient is null || file.Length < 0 || file.Open.TransferId.Length != MediaChunkWire.TransferIdBytes)
            {
                RelayLog.MediaSpoolDiscarded(_logger, file.BasePath, "unreadable metadata, missing blob or partner no longer approved");
                DeleteFiles(file.BasePath);
                continue;
            }

            long expiresAt = file.Open.ExpiresAtMs != 0 ? file.Open.ExpiresAtMs
                : new DateTimeOffset(file.CreatedUtc).ToUnixTimeMilliseconds() + (long)_limits.DefaultRetention.TotalMilliseconds;
            if (expiresAt <= nowMs || (file.Complete && file.Length != (long)file.Open.TotalSize))
            {
                RelayLog.MediaSpoolDiscarded(_logger, file.BasePath, expiresAt <= nowMs ? "expired" : "blob size differs from the declared size");
                DeleteFiles(file.BasePath);
                continue;
            }

            UInt128 id = MediaChunkWire.ReadTransferId(file.Open.TransferId);
            var transfer = new MediaTransfer(id, file.Open, sender, recipient, file.BasePath, expiresAt);
            _transfers[(sender.Index, id)] = transfer;
            _spoolBytes[sender.Index] += transfer.TotalSize;
            if (file.Complete)
            {
                transfer.State = MediaTransferState.Spooled;
                _outbox[recipient.Index].AddLast(transfer);
                blobs++;
            }
            else
            {
                transfer.State = MediaTransferState.Receiving;
                transfer.Received = Math.Min(file.Length, transfer.TotalSize);
                transfer.AwaitingResume = true;
                _openTransfers[sender.Index]++;
                partials++;
            }
        }

        RelayLog.MediaRecovered(_logger, _spool.Directory, blobs, partials);
    }
}
