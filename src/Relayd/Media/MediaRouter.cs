using Microsoft.Extensions.Logging;
using Relayd.Hosting;
using Relayd.Protocol.Framing;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Media;

/// <summary>
/// Every media transfer of the relay: accepts blobs from senders into the spool (checking size, quota, offsets,
/// credit and digest), hands blobs to a session of the recipient partner (while they arrive, or once spooled), and
/// deletes them when the recipient has them or they expire. Sessions call in from their read loops; a timer drops
/// stalled transfers. The sender side is in <c>MediaRouter.Upload.cs</c>, the recipient side in
/// <c>MediaRouter.Delivery.cs</c>, start-up in <c>MediaRouter.Recovery.cs</c>.
/// </summary>
/// <remarks>
/// Data path of one chunk: sender's input pipe → <see cref="MediaChunkWire.TryRead"/> slices the data in place →
/// <see cref="Chunk"/> writes each segment to the spool file (pwrite) and into the running SHA-256, and, when the
/// recipient's session has caught up with the upload, copies it into that session's <see cref="MediaForwardQueue"/>
/// → the pipe buffer is released → the recipient's writer sends the queued buffer with the frame header in front.
/// A recipient that has not caught up is sent the spool file instead. Nothing is allocated per chunk; credit keeps
/// the sender within a window of the slowest point its bytes have reached (spool file, or recipient connection).
/// </remarks>
internal sealed partial class MediaRouter : IDisposable
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
        _sweeper = new Timer(_ => Sweep());
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

    /// <summary>Loads what an earlier run left in the spool, then starts dropping stalled and expired transfers.</summary>
    public void Start()
    {
        Recover();
        TimeSpan period = TimeSpan.FromMilliseconds(Math.Clamp(_options.TransferIdleTimeout.TotalMilliseconds / 4, 25, 1000));
        _sweeper.Change(period, period);
    }

    public void Dispose() => _sweeper.Dispose();

    // ---------------------------------------------------------------- sessions

    /// <summary>
    /// A session of a partner started: media for that partner may now go to it, including blobs still arriving (it is
    /// sent what the spool holds, then follows the upload).
    /// </summary>
    public void Attach(IMediaPeer peer)
    {
        int partner = peer.Partner.Index;
        lock (_lock)
        {
            _peers[partner].Add(peer);
            foreach (MediaTransfer transfer in _transfers.Values)
            {
                if (transfer.Recipient.Index == partner && transfer.State == MediaTransferState.Receiving && transfer.Streamable
                    && transfer.Downloader is null && !_outbox[partner].Contains(transfer))
                {
                    transfer.DeliveryStartOffset = 0;
                    _outbox[partner].AddLast(transfer);
                }
            }
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
                    // Streaming while it arrived: another session of the partner (now or later) starts it again.
                    transfer.Downloader = null;
                    transfer.DeliveryStartOffset = 0;
                    _outbox[recipient].AddFirst(transfer);
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

    /// <summary>
    /// An upload whose sender could have sent (it is away, was told to resume, has credit, or owes only the MediaClose)
    /// and has not for the idle timeout. A sender waiting for credit because a slow recipient paces it is not idle: granting credit restarts
    /// its clock.
    /// </summary>
    private static bool IsSenderIdle(MediaTransfer transfer, long nowTicks, long idleMs) =>
        transfer.State == MediaTransferState.Receiving
        && (transfer.Uploader is null || transfer.AwaitingResume || transfer.CreditLimit > transfer.Received || transfer.Received == transfer.TotalSize)
        && nowTicks - transfer.LastActivityTicks > idleMs;

    /// <summary>Drops transfers whose sender went silent, and spooled blobs past their expiry.</summary>
    private void Sweep()
    {
        long nowTicks = Environment.TickCount64;
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        long idleMs = (long)_options.TransferIdleTimeout.TotalMilliseconds;
        List<MediaTransfer>? stalled = null;
        List<MediaTransfer>? expired = null;
        List<MediaTransfer>? unread = null;
        lock (_lock)
        {
            foreach (MediaTransfer transfer in _transfers.Values)
            {
                if (IsSenderIdle(transfer, nowTicks, idleMs))
                {
                    (stalled ??= []).Add(transfer);
                }
                else if (transfer.State == MediaTransferState.Receiving && transfer.Forward is not null
                    && transfer.Received > transfer.Forwarded && nowTicks - transfer.ForwardedTicks > idleMs / 2)
                {
                    (unread ??= []).Add(transfer);
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
                if (!IsSenderIdle(transfer, nowTicks, idleMs))
                {
                    continue;
                }

                transfer.AbortCode = ErrorCode.MediaIdleTimeout;
                transfer.State = MediaTransferState.Gone;
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

        foreach (MediaTransfer transfer in unread ?? [])
        {
            // The recipient stopped reading: it must not hold the sender up until the transfer times out. The rest of
            // the blob goes to the spool at the disk's pace; the recipient's session continues from the file.
            IMediaPeer? downloader;
            lock (transfer)
            {
                if (transfer.State != MediaTransferState.Receiving || transfer.Forward is null || nowTicks - transfer.ForwardedTicks <= idleMs / 2)
                {
                    continue;
                }

                Unforward(transfer);
                downloader = transfer.Downloader;
            }

            RelayLog.MediaRecipientStalled(_logger, transfer.Recipient.Id, transfer.Forwarded, transfer.Received);
            downloader?.WakeMediaWriter();
        }

        foreach (MediaTransfer transfer in expired ?? [])
        {
            RelayLog.MediaExpired(_logger, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
            Remove(transfer);
        }
    }
}
