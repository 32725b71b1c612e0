using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Media;

/// <summary>Where a transfer is in its life. Transitions are methods of <see cref="MediaTransfer"/>, under its lock.</summary>
internal enum MediaTransferState
{
    /// <summary>Opened by the sender; chunks are arriving (or will, after a MediaResume).</summary>
    Receiving,

    /// <summary>Verified, fsynced and waiting in the recipient partner's outbox.</summary>
    Spooled,

    /// <summary>A session of the recipient partner is streaming it.</summary>
    Sending,

    /// <summary>Streamed completely; waiting for the recipient's MediaReceived.</summary>
    Sent,

    /// <summary>Delivered, expired, aborted: its files are deleted.</summary>
    Gone,
}

/// <summary>What became of a MediaChunk (<see cref="MediaTransfer.AcceptChunk"/>).</summary>
internal enum ChunkOutcome
{
    /// <summary>Written to the spool and into the running digest.</summary>
    Accepted,

    /// <summary>Dropped without an answer: the blob is complete already, or the sender was told to resume.</summary>
    Ignored,

    /// <summary>The transfer was aborted.</summary>
    Aborted,

    /// <summary>Not at the next offset; the sender must resume.</summary>
    OffsetMismatch,

    /// <summary>Ends beyond the declared size; the sender must resume.</summary>
    BeyondSize,

    /// <summary>Ends beyond the granted credit; the sender must resume.</summary>
    BeyondCredit,

    /// <summary>The relay restarted since the chunks before it; the sender must resume.</summary>
    NotResumed,

    /// <summary>The spool could not take it: the transfer is now Gone.</summary>
    SpoolFailed,
}

/// <summary>What became of a MediaClose (<see cref="MediaTransfer.Complete"/>).</summary>
internal enum CloseOutcome
{
    /// <summary>Verified and durable, now waiting in the recipient's outbox (state Spooled).</summary>
    Spooled,

    /// <summary>Verified and durable while a recipient session streams it (state Sending): that session sends MediaClose.</summary>
    Streaming,

    /// <summary>Closed before (the first answer was lost): same answer.</summary>
    AlreadyComplete,

    /// <summary>The transfer was aborted.</summary>
    Aborted,

    /// <summary>Not every byte arrived, or the sender must resume first.</summary>
    Incomplete,

    /// <summary>The bytes are not the declared SHA-256: the transfer is now Gone.</summary>
    DigestMismatch,

    /// <summary>The spool could not make it durable: the transfer is now Gone.</summary>
    SpoolFailed,
}

/// <summary>
/// One media blob moving through the relay, and every transition of its life, under its own lock. While it arrives
/// the chunk path (<see cref="AcceptChunk"/>) appends to its spool file and its running SHA-256; the relay never holds
/// more of it in memory than the chunk in hand.
/// </summary>
/// <remarks>
/// Locking: the router may call these methods while it holds its own lock (for its outboxes and counters); nothing
/// here calls back into the router, so the order is always router, then transfer. A session streaming the blob reads
/// <see cref="State"/>, <see cref="AbortCode"/>, <see cref="Received"/> and <see cref="Forward"/> without the lock:
/// the abort code is set before the state becomes Gone.
/// </remarks>
internal sealed class MediaTransfer
{
    // Writeback of spool files is started every 2^23 bytes = 8 MiB (see IMediaSpool.StartWriteback).
    private const int WritebackShift = 23;

    private readonly Lock _lock = new();
    private readonly long _windowBytes;
    private volatile MediaTransferState _state;
    private volatile ErrorCode _abortCode;
    private bool _streamable;

    // ---- receiving ----
    private SafeFileHandle? _part;
    private IncrementalHash? _hash;
    private long _received;
    private long _creditLimit;
    private long _creditAnnounced;
    private bool _awaitingResume;
    private volatile IMediaPeer? _uploader;
    private long _lastActivityTicks = Environment.TickCount64;

    // ---- delivering ----
    private volatile IMediaPeer? _downloader;
    private volatile MediaForwardQueue? _forward;
    private long _forwarded;
    private long _forwardedTicks;
    private long _deliveryStartOffset;

    private MediaTransfer(UInt128 id, MediaOpen open, PartnerInfo sender, PartnerInfo recipient, string basePath, long expiresAtMs, long windowBytes)
    {
        Id = id;
        Open = open;
        Sender = sender;
        Recipient = recipient;
        BasePath = basePath;
        ExpiresAtMs = expiresAtMs;
        TotalSize = (long)open.TotalSize;
        _windowBytes = windowBytes;
    }

    /// <summary>
    /// A transfer its sender opens now: receiving, with a first window of credit (announced in the answer to the
    /// MediaOpen); not streamable until <see cref="StartReceiving"/> has created its files.
    /// </summary>
    public static MediaTransfer Opened(UInt128 id, MediaOpen open, PartnerInfo sender, PartnerInfo recipient, string basePath, long expiresAtMs, IMediaPeer uploader, long windowBytes)
    {
        var transfer = new MediaTransfer(id, open, sender, recipient, basePath, expiresAtMs, windowBytes) { _uploader = uploader };
        transfer._creditLimit = Math.Min(transfer.TotalSize, windowBytes);
        transfer._creditAnnounced = transfer._creditLimit;
        return transfer;
    }

    /// <summary>
    /// A transfer an earlier run left in the spool: a verified blob waiting for delivery (<paramref name="complete"/>),
    /// or a partial one of <paramref name="length"/> bytes waiting for its sender's MediaResume.
    /// </summary>
    public static MediaTransfer Recovered(UInt128 id, MediaOpen open, PartnerInfo sender, PartnerInfo recipient, string basePath, long expiresAtMs, bool complete, long length, long windowBytes)
    {
        var transfer = new MediaTransfer(id, open, sender, recipient, basePath, expiresAtMs, windowBytes) { _streamable = true };
        if (complete)
        {
            transfer._state = MediaTransferState.Spooled;
        }
        else
        {
            transfer._state = MediaTransferState.Receiving;
            transfer._received = Math.Min(length, transfer.TotalSize);
            transfer._awaitingResume = true;
        }

        return transfer;
    }

    public UInt128 Id { get; }

    /// <summary>The MediaOpen as the sender wrote it; sent on to the recipient unchanged.</summary>
    public MediaOpen Open { get; }

    public PartnerInfo Sender { get; }

    public PartnerInfo Recipient { get; }

    /// <summary>The spool's name for its files (<see cref="IMediaSpool.BasePath"/>).</summary>
    public string BasePath { get; }

    public long TotalSize { get; }

    public long ExpiresAtMs { get; }

    /// <summary>Read without a lock by the session streaming it; <see cref="AbortCode"/> is set before it becomes Gone.</summary>
    public MediaTransferState State => _state;

    /// <summary>Why an upload was dropped (State Gone): what a recipient that was streaming it is told.</summary>
    public ErrorCode AbortCode => _abortCode;

    /// <summary>
    /// Next offset the relay expects; everything below it is written to the spool file. Read without the lock by a
    /// recipient session streaming the blob while it arrives.
    /// </summary>
    public long Received => Volatile.Read(ref _received);

    /// <summary>The sender may send bytes below this offset (the credit window's end).</summary>
    public long CreditLimit => Volatile.Read(ref _creditLimit);

    /// <summary>
    /// The recipient session streaming it: in state Sending or Sent, or already in state Receiving when the recipient
    /// was connected at MediaOpen (cut-through: chunks are forwarded as they arrive, MediaClose only once verified).
    /// </summary>
    public IMediaPeer? Downloader => _downloader;

    /// <summary>
    /// Set while the downloader's session forwards chunks straight from the sender's read loop: each accepted chunk is
    /// also copied into this queue. Null while the blob goes only to the spool.
    /// </summary>
    public MediaForwardQueue? Forward => _forward;

    /// <summary>Offset up to which the forwarding writer has written to the recipient's connection (paces the sender).</summary>
    public long Forwarded => Volatile.Read(ref _forwarded);

    /// <summary>Offset the next delivery starts from (a recipient's MediaResume sets it).</summary>
    public long DeliveryStartOffset
    {
        get
        {
            lock (_lock)
            {
                return _deliveryStartOffset;
            }
        }
    }

    // ---------------------------------------------------------------- receiving

    /// <summary>Creates the spool files and the running digest; the transfer is streamable from then on (see <see cref="MarkStreamable"/>).</summary>
    /// <exception cref="IOException">The spool cannot create them.</exception>
    public void StartReceiving(IMediaSpool spool)
    {
        lock (_lock)
        {
            _part = spool.Create(BasePath, Open);
            _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        }
    }

    /// <summary>
    /// One chunk from the sender; <paramref name="data"/> is a slice of its input pipe, written to the spool, into the
    /// digest and (cut-through) into the forwarding queue before this returns. A refusal leaves the transfer waiting
    /// for a MediaResume, so one mistake costs one Error frame, not one per chunk; <paramref name="expected"/> is then
    /// the next offset (offset mismatch) or the window's end (credit exceeded).
    /// </summary>
    public ChunkOutcome AcceptChunk(IMediaSpool spool, long offset, in ReadOnlySequence<byte> data, out long expected, out IOException? error)
    {
        expected = 0;
        error = null;
        lock (_lock)
        {
            if (_state != MediaTransferState.Receiving)
            {
                // After a close the relay already accepted there is nothing to do with it.
                return _state == MediaTransferState.Gone ? ChunkOutcome.Aborted : ChunkOutcome.Ignored;
            }

            if (_awaitingResume)
            {
                return ChunkOutcome.Ignored;
            }

            long end = offset + data.Length;
            ChunkOutcome refused = offset != _received ? ChunkOutcome.OffsetMismatch
                : end > TotalSize ? ChunkOutcome.BeyondSize
                : end > _creditLimit ? ChunkOutcome.BeyondCredit
                : _part is null || _hash is null ? ChunkOutcome.NotResumed
                : ChunkOutcome.Accepted;
            if (refused != ChunkOutcome.Accepted)
            {
                _awaitingResume = true;
                expected = refused == ChunkOutcome.BeyondCredit ? _creditLimit : _received;
                return refused;
            }

            long position = offset;
            try
            {
                foreach (ReadOnlyMemory<byte> segment in data)
                {
                    spool.Write(_part!, segment.Span, position);
                    _hash!.AppendData(segment.Span);
                    position += segment.Length;
                }
            }
            catch (IOException ex)
            {
                error = ex;
                Fail(ErrorCode.StorageFull);
                return ChunkOutcome.SpoolFailed;
            }

            if ((end >> WritebackShift) != (offset >> WritebackShift))
            {
                long block = (end >> WritebackShift) << WritebackShift;
                spool.StartWriteback(_part!, block - (1L << WritebackShift), 1L << WritebackShift);
            }

            Volatile.Write(ref _received, end);
            _lastActivityTicks = Environment.TickCount64;
            _forward?.Append(offset, data);
            _downloader?.WakeMediaWriter();

            // Going only to the spool, the disk paces the sender. While a recipient takes the chunks as they come, the
            // writer forwarding them grants credit instead (OnForwarded): the slowest link paces the sender.
            if (_forward is null)
            {
                GrantCredit(end);
            }

            return ChunkOutcome.Accepted;
        }
    }

    /// <summary>
    /// For the uploader's writer: credit granted since the last announcement (0 when none is due, or when
    /// <paramref name="peer"/> no longer sends this transfer), now counted as announced.
    /// </summary>
    public long TakeCreditGrant(IMediaPeer peer)
    {
        lock (_lock)
        {
            if (_uploader != peer || _state != MediaTransferState.Receiving)
            {
                return 0;
            }

            long grant = _creditLimit - _creditAnnounced;
            _creditAnnounced = _creditLimit;
            return grant;
        }
    }

    /// <summary>
    /// MediaClose: checks that every byte arrived and that they are the declared SHA-256, then commits the blob in the
    /// spool; only then is it Spooled (or Sending, when a recipient session streamed it while it arrived).
    /// </summary>
    public CloseOutcome Complete(IMediaSpool spool, out IOException? error)
    {
        error = null;
        lock (_lock)
        {
            if (_state is MediaTransferState.Spooled or MediaTransferState.Sending or MediaTransferState.Sent)
            {
                return CloseOutcome.AlreadyComplete;
            }

            if (_state == MediaTransferState.Gone)
            {
                return CloseOutcome.Aborted;
            }

            if (_awaitingResume || _received != TotalSize || _hash is null || _part is null)
            {
                return CloseOutcome.Incomplete;
            }

            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            _hash.GetHashAndReset(digest);
            if (!digest.SequenceEqual(Open.Sha256.Span))
            {
                Fail(ErrorCode.MediaDigestMismatch);
                return CloseOutcome.DigestMismatch;
            }

            try
            {
                spool.Commit(_part, BasePath);
                _part = null;
                ReleaseReceiving();
            }
            catch (IOException ex)
            {
                error = ex;
                Fail(ErrorCode.StorageFull);
                return CloseOutcome.SpoolFailed;
            }

            // Streamed while it arrived: the session sends MediaClose now that the blob is verified.
            _state = _downloader is not null ? MediaTransferState.Sending : MediaTransferState.Spooled;
            return _state == MediaTransferState.Sending ? CloseOutcome.Streaming : CloseOutcome.Spooled;
        }
    }

    /// <summary>
    /// MediaResume from the sender, now using <paramref name="peer"/>: makes what the spool holds durable (rebuilding
    /// the digest from it after a restart) and opens a fresh window. False when the blob is complete already, or when
    /// the spool failed (<paramref name="error"/> set; the transfer is now Gone). <paramref name="next"/> is the
    /// offset to continue from, <paramref name="credit"/> the bytes the sender may send beyond it.
    /// </summary>
    public bool ResumeUpload(IMediaSpool spool, IMediaPeer peer, out long next, out long credit, out IOException? error)
    {
        next = TotalSize;
        credit = 0;
        error = null;
        lock (_lock)
        {
            if (_state != MediaTransferState.Receiving)
            {
                return false;
            }

            try
            {
                _part ??= spool.OpenPart(BasePath);
                if (_hash is null)
                {
                    // After a restart: the running digest is rebuilt from what is on disk (the final check covers it).
                    _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    Rehash(spool);
                }

                // "Durable" is literal: the offset reported is on disk.
                spool.Flush(_part);
            }
            catch (IOException ex)
            {
                error = ex;
                Fail(ErrorCode.StorageFull);
                return false;
            }

            _awaitingResume = false;
            _uploader = peer;
            _lastActivityTicks = Environment.TickCount64;

            // While forwarding, the window runs from what the recipient has, as for chunks.
            long basis = _forward is null ? _received : _forwarded;
            Volatile.Write(ref _creditLimit, Math.Max(_received, Math.Min(basis + _windowBytes, TotalSize)));
            _creditAnnounced = _creditLimit;
            next = _received;
            credit = _creditLimit - _received;
            return true;
        }
    }

    /// <summary>The sender's session ended: the upload waits for a MediaResume from another.</summary>
    public void ReleaseUploader(IMediaPeer peer)
    {
        lock (_lock)
        {
            if (_uploader == peer)
            {
                _uploader = null;
            }
        }
    }

    /// <summary>
    /// An upload whose sender could have sent (it is away, was told to resume, has credit, or owes only the MediaClose)
    /// and has not for the idle timeout. A sender waiting for credit because a slow recipient paces it is not idle:
    /// granting credit restarts its clock. Read without the lock for a first look; <see cref="TryTimeOut"/> decides.
    /// </summary>
    public bool IsSenderIdle(long nowTicks, long idleMs) =>
        _state == MediaTransferState.Receiving
        && (_uploader is null || _awaitingResume || CreditLimit > Received || Received == TotalSize)
        && nowTicks - Volatile.Read(ref _lastActivityTicks) > idleMs;

    /// <summary>Drops an upload whose sender went silent (state Gone); false when it is not idle after all. <paramref name="uploader"/> is told.</summary>
    public bool TryTimeOut(long nowTicks, long idleMs, out IMediaPeer? uploader)
    {
        lock (_lock)
        {
            uploader = _uploader;
            if (!IsSenderIdle(nowTicks, idleMs))
            {
                return false;
            }

            Fail(ErrorCode.MediaIdleTimeout);
            return true;
        }
    }

    /// <summary>Drops an upload (state Gone) without a code for a recipient: its files could not be created.</summary>
    public void Discard()
    {
        lock (_lock)
        {
            _state = MediaTransferState.Gone;
        }
    }

    /// <summary>Closes the spool file and the digest.</summary>
    public void ReleaseReceiving()
    {
        lock (_lock)
        {
            _part?.Dispose();
            _part = null;
            _hash?.Dispose();
            _hash = null;
        }
    }

    // ---------------------------------------------------------------- delivering

    /// <summary>Its spool files exist now: a recipient session may stream it.</summary>
    public void MarkStreamable()
    {
        lock (_lock)
        {
            _streamable = true;
        }
    }

    /// <summary>
    /// Arriving, streamable and not yet streamed by any session: a recipient session that is there can start on it now
    /// and follow the upload.
    /// </summary>
    public bool AwaitsEarlyDelivery
    {
        get
        {
            lock (_lock)
            {
                return _state == MediaTransferState.Receiving && _streamable && _downloader is null;
            }
        }
    }

    /// <summary>Queued again for delivery from the start (the router puts it into the recipient's outbox).</summary>
    public void QueueFromStart()
    {
        lock (_lock)
        {
            _deliveryStartOffset = 0;
        }
    }

    /// <summary>Taken from the outbox by <paramref name="peer"/>, which streams it from now on.</summary>
    public void BeginDelivery(IMediaPeer peer)
    {
        lock (_lock)
        {
            if (_state == MediaTransferState.Spooled)
            {
                _state = MediaTransferState.Sending;
            }

            _downloader = peer;
        }
    }

    /// <summary>True while <paramref name="peer"/> still owns the delivery. Without the lock: the writer asks before each step.</summary>
    public bool IsDeliveringTo(IMediaPeer peer) =>
        _downloader == peer && _state is MediaTransferState.Sending or MediaTransferState.Receiving;

    /// <summary>
    /// <paramref name="peer"/>'s session ended while it streamed the blob; true when the blob is to be queued again
    /// (from the start, for the next session of the partner): streamed while it arrived, or sent and not acknowledged.
    /// </summary>
    public bool ReleaseDownloader(IMediaPeer peer)
    {
        lock (_lock)
        {
            if (_downloader != peer || _state is not (MediaTransferState.Receiving or MediaTransferState.Sending or MediaTransferState.Sent))
            {
                return false;
            }

            if (_state != MediaTransferState.Receiving)
            {
                _state = MediaTransferState.Spooled;
            }

            _downloader = null;
            _deliveryStartOffset = 0;
            return true;
        }
    }

    /// <summary>The recipient asked for it again from <paramref name="offset"/>: whoever was sending it stops at its next step.</summary>
    public void RestartDelivery(long offset)
    {
        lock (_lock)
        {
            _state = MediaTransferState.Spooled;
            _downloader = null;
            _deliveryStartOffset = offset;
        }
    }

    /// <summary>The session wrote the MediaClose; the blob now waits for MediaReceived.</summary>
    public void MarkSent(IMediaPeer peer)
    {
        lock (_lock)
        {
            if (IsDeliveringTo(peer) && _state == MediaTransferState.Sending)
            {
                _state = MediaTransferState.Sent;
            }
        }
    }

    /// <summary>Delivered, expired or dropped as unreadable once complete: Gone (the router deletes the files).</summary>
    public void Retire()
    {
        lock (_lock)
        {
            _state = MediaTransferState.Gone;
            _downloader = null;
        }
    }

    /// <summary>
    /// Cut-through: <paramref name="peer"/>'s writer has sent everything the spool holds so far, so from now on the
    /// sender's read loop also copies each chunk into <paramref name="queue"/>, and the writer sends from there
    /// instead of reading the file back. False when the sender got ahead again meanwhile (keep reading the file).
    /// </summary>
    public bool TryStartForwarding(IMediaPeer peer, MediaForwardQueue queue, long offset)
    {
        lock (_lock)
        {
            if (_state != MediaTransferState.Receiving || _downloader != peer || _received != offset || _forward is not null)
            {
                return false;
            }

            queue.Begin(Id);
            _forward = queue;
            Volatile.Write(ref _forwarded, offset);
            Volatile.Write(ref _forwardedTicks, Environment.TickCount64);
            return true;
        }
    }

    /// <summary>
    /// The forwarding writer has written the blob up to <paramref name="end"/> to the recipient's connection: the
    /// sender gets credit up to a window beyond it, so it never runs more than a window ahead of the recipient.
    /// </summary>
    public void OnForwarded(long end)
    {
        Volatile.Write(ref _forwarded, end);
        Volatile.Write(ref _forwardedTicks, Environment.TickCount64);
        long limit = CreditLimit;
        if (limit >= TotalSize || limit - end > _windowBytes / 2)
        {
            return;
        }

        lock (_lock)
        {
            if (_state == MediaTransferState.Receiving && _forward is not null)
            {
                GrantCredit(end);
            }
        }
    }

    /// <summary>
    /// The writer stops forwarding through <paramref name="queue"/> (blob sent, recipient gone, or given up on): a
    /// sender still uploading is paced by the spool again. The caller empties the queue.
    /// </summary>
    public void StopForwarding(MediaForwardQueue queue)
    {
        lock (_lock)
        {
            if (_forward == queue)
            {
                Unforward();
            }
        }
    }

    /// <summary>Forwarding, and the recipient has not taken a chunk for half the idle timeout (a first look, without the lock).</summary>
    public bool IsRecipientStalled(long nowTicks, long idleMs) =>
        _state == MediaTransferState.Receiving && _forward is not null
        && Received > Forwarded && nowTicks - Volatile.Read(ref _forwardedTicks) > idleMs / 2;

    /// <summary>
    /// The recipient stopped reading: forwarding stops, so that it does not hold the sender up until the transfer times
    /// out; the rest goes to the spool at the disk's pace. False when it moved meanwhile. <paramref name="downloader"/> is woken.
    /// </summary>
    public bool TryStopStalledForwarding(long nowTicks, long idleMs, out IMediaPeer? downloader)
    {
        lock (_lock)
        {
            downloader = _downloader;
            if (_state != MediaTransferState.Receiving || _forward is null || nowTicks - Volatile.Read(ref _forwardedTicks) <= idleMs / 2)
            {
                return false;
            }

            Unforward();
            return true;
        }
    }

    /// <summary>
    /// <paramref name="peer"/>'s writer could not read the blob back. False when it no longer streams it (the blob went
    /// away meanwhile: that is why). Otherwise the recipient is to be told STORAGE_FULL; an upload still arriving is
    /// dropped (Gone, <paramref name="receiving"/>; <paramref name="uploader"/> is told), a complete one the router retires.
    /// </summary>
    public bool TryFailDelivery(IMediaPeer peer, out bool receiving, out IMediaPeer? uploader)
    {
        lock (_lock)
        {
            receiving = _state == MediaTransferState.Receiving;
            uploader = _uploader;
            if (!IsDeliveringTo(peer))
            {
                return false;
            }

            // The code first: a writer that sees Gone reads it without the lock.
            _abortCode = ErrorCode.StorageFull;
            if (receiving)
            {
                _state = MediaTransferState.Gone;
            }

            return true;
        }
    }

    // ---------------------------------------------------------------- under the lock

    // The code before the state: the recipient's writer reads both without the lock, state first.
    private void Fail(ErrorCode code)
    {
        _abortCode = code;
        _state = MediaTransferState.Gone;
    }

    /// <summary>Lets the sender go up to a window beyond <paramref name="basis"/>, announced once half a window or the rest of the blob is due (like HTTP/2 WINDOW_UPDATE).</summary>
    private void GrantCredit(long basis)
    {
        long limit = Math.Min(basis + _windowBytes, TotalSize);
        if (limit - _creditLimit >= _windowBytes / 2 || (limit == TotalSize && limit > _creditLimit))
        {
            Volatile.Write(ref _creditLimit, limit);
            _lastActivityTicks = Environment.TickCount64; // the sender's idle clock starts when it may send
            _uploader?.AnnounceCredit(this);
        }
    }

    // Chunks go only to the spool from now on; the forwarding writer notices and resets its queue.
    private void Unforward()
    {
        _forward = null;
        if (_state == MediaTransferState.Receiving)
        {
            GrantCredit(_received);
        }
    }

    private void Rehash(IMediaSpool spool)
    {
        const int RehashReadBytes = 1024 * 1024; // large sequential reads of the spool file; pooled, once per resumed transfer
        byte[] buffer = ArrayPool<byte>.Shared.Rent(RehashReadBytes);
        try
        {
            long position = 0;
            while (position < _received)
            {
                int read = spool.Read(_part!, buffer.AsSpan(0, (int)Math.Min(buffer.Length, _received - position)), position);
                if (read == 0)
                {
                    // The file is shorter than recorded: continue from its real end.
                    Volatile.Write(ref _received, position);
                    break;
                }

                _hash!.AppendData(buffer, 0, read);
                position += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>A partner session as the media code sees it.</summary>
internal interface IMediaPeer
{
    PartnerInfo Partner { get; }

    long ConnectionId { get; }

    /// <summary>Queues a frame for the partner; only from this peer's own read loop (it shares the reply pipe).</summary>
    void Reply(Frame frame);

    /// <summary>Queues a frame for the partner from any thread (timers, other sessions).</summary>
    void Post(Frame frame);

    /// <summary>Tells the peer's writer that media may be waiting for it.</summary>
    void WakeMediaWriter();

    /// <summary>
    /// Has the peer's writer tell the sender of <paramref name="transfer"/> about credit granted since the last
    /// announcement (one MediaCredit frame, written without allocating). From any thread.
    /// </summary>
    void AnnounceCredit(MediaTransfer transfer);
}
