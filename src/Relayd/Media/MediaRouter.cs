using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.Internal;
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
    private readonly RelayMetrics _metrics;
    private readonly IMediaSpool _spool;
    private readonly Lock _lock = new();

    // One per partner, keyed by the PartnerInfo reference; a partner a reload approved gets its own on first use
    // (StateOf). Guarded by _lock.
    private readonly Dictionary<PartnerInfo, MediaPartnerState> _state;
    private readonly Timer _sweeper;
    private readonly Routing.SupportEvents _support;

    public MediaRouter(MediaOptions options, PartnerDirectory partners, RelayLimits limits, IMediaSpool spool, ILogger logger, TimeProvider clock, RelayMetrics metrics, Admission.InteropPolicy? interop = null, Routing.SupportEvents? support = null)
    {
        _support = support ?? Routing.SupportEvents.None;
        _admission = Admission.AdmissionPipelines.MediaOpen(interop ?? Admission.InteropPolicy.None);
        _options = options;
        _partners = partners;
        _limits = limits;
        _logger = logger;
        _clock = clock;
        _spool = spool;
        _metrics = metrics;
        _state = new Dictionary<PartnerInfo, MediaPartnerState>(ReferenceEqualityComparer.Instance);
        foreach (PartnerInfo partner in partners.Partners)
        {
            _state[partner] = new MediaPartnerState(partner);
        }

        _sweeper = new Timer(_ => Sweep());
    }

    /// <summary>The media state of <paramref name="partner"/>, created for one a reload approved. Call under <c>_lock</c>.</summary>
    private MediaPartnerState StateOf(PartnerInfo partner)
    {
        if (!_state.TryGetValue(partner, out MediaPartnerState? state))
        {
            state = new MediaPartnerState(partner);
            _state[partner] = state;
        }

        return state;
    }

    /// <summary>Bytes of one chunk the relay sends to recipients (below the large-object heap size of .NET clients).</summary>
    public const int DeliveryChunkBytes = 64 * 1024;

    /// <summary>Where the blobs are; sessions streaming a blob read it from here.</summary>
    public IMediaSpool Spool => _spool;

    public int TransferCount
    {
        get
        {
            lock (_lock)
            {
                int count = 0;
                foreach (MediaPartnerState state in _state.Values)
                {
                    count += state.Transfers.Count;
                }

                return count;
            }
        }
    }

    /// <summary>Loads what an earlier run left in the spool, then starts dropping stalled and expired transfers.</summary>
    public void Start()
    {
        Recover();

        // A quarter of the idle timeout drops an idle transfer within 25% of it; 25 ms..1 s bounds the sweep's cost.
        TimeSpan period = TimeSpan.FromMilliseconds(Math.Clamp(_options.TransferIdleTimeout.TotalMilliseconds / 4, 25, 1000));
        _sweeper.Change(period, period);
    }

    public void Dispose() => _sweeper.Dispose();

    /// <summary>Each sender partner's open transfers and spool bytes now, for the metrics' gauges.</summary>
    public List<(string Partner, int OpenTransfers, long SpoolBytes)> CaptureUsage()
    {
        lock (_lock)
        {
            return [.. _state.Select(p => (p.Key.Id, p.Value.OpenTransfers, p.Value.SpoolBytes))];
        }
    }

    // ---------------------------------------------------------------- sessions

    /// <summary>
    /// A session of a partner started: media for that partner may now go to it, including blobs still arriving (it is
    /// sent what the spool holds, then follows the upload).
    /// </summary>
    public void Attach(IMediaPeer peer)
    {
        PartnerInfo partner = peer.Partner;
        lock (_lock)
        {
            MediaPartnerState recipient = StateOf(partner);
            recipient.Peers.Add(peer);
            foreach (MediaPartnerState sender in _state.Values)
            {
                foreach (MediaTransfer transfer in sender.Transfers.Values)
                {
                    if (transfer.Recipient == partner && transfer.AwaitsEarlyDelivery && !recipient.Outbox.Contains(transfer))
                    {
                        transfer.QueueFromStart();
                        recipient.Outbox.AddLast(transfer);
                    }
                }
            }
        }

        peer.WakeMediaWriter();
    }

    /// <summary>A session ended: what it was streaming goes back to the outbox, uploads wait for a resume.</summary>
    public void Detach(IMediaPeer peer)
    {
        lock (_lock)
        {
            MediaPartnerState recipient = StateOf(peer.Partner);
            recipient.Peers.Remove(peer);
            foreach (MediaPartnerState sender in _state.Values)
            {
                foreach (MediaTransfer transfer in sender.Transfers.Values)
                {
                    transfer.ReleaseUploader(peer);

                    // Streamed while it arrived, or sent and not acknowledged: another session of the partner (now or
                    // later) delivers it again, from the start.
                    if (transfer.ReleaseDownloader(peer))
                    {
                        recipient.Outbox.AddFirst(transfer);
                    }
                }
            }
        }

        WakeRecipient(peer.Partner);
    }

    // ---------------------------------------------------------------- housekeeping

    private MediaTransfer? Find(PartnerInfo sender, UInt128 id)
    {
        lock (_lock)
        {
            return StateOf(sender).Transfers.GetValueOrDefault(id);
        }
    }

    private static Frame Complete(MediaTransfer transfer) =>
        new() { MediaComplete = new MediaComplete { TransferId = transfer.Open.TransferId, TotalSize = (ulong)transfer.TotalSize } };

    /// <summary>Refuses a MediaOpen for a reason of the session's, not of the transfer (the relay is draining).</summary>
    public void RefuseOpen(IMediaPeer peer, MediaOpen open, ErrorCode code, string detail, uint retryAfterMs) =>
        Refuse(peer, MediaChunkWire.ReadTransferId(open.TransferId), code, detail, retryAfterMs);

    /// <param name="recipientSide">The refused peer is the recipient (MediaReceived, a download resume): not a failure of a transfer of its own.</param>
    private void Refuse(IMediaPeer peer, UInt128 id, ErrorCode code, string detail, uint retryAfterMs = 0, bool recipientSide = false)
    {
        RelayLog.MediaRefused(_logger, peer.ConnectionId, peer.Partner.Id, code, detail);
        if (!recipientSide)
        {
            Report(Routing.MediaEventKind.Failed, peer.Partner, null, id, 0, 0, code, detail, peer.ConnectionId);
        }

        peer.Reply(new Frame { Error = new Error { Code = code, Detail = detail, RetryAfterMs = retryAfterMs, TransferId = MediaChunkWire.ToByteString(id) } });
    }

    /// <summary>Drops a transfer that is still arriving: files deleted, its slot and quota released.</summary>
    private void Abort(MediaTransfer transfer)
    {
        transfer.Discard();
        AbortOutsideLock(transfer);
    }

    // The transfer is Gone already (set under its lock); the files go last.
    private void AbortOutsideLock(MediaTransfer transfer)
    {
        IMediaPeer? downloader;
        lock (_lock)
        {
            MediaPartnerState sender = StateOf(transfer.Sender);
            if (sender.Transfers.Remove(transfer.Id))
            {
                sender.OpenTransfers--;
                sender.SpoolBytes -= transfer.TotalSize;
            }

            StateOf(transfer.Recipient).Outbox.Remove(transfer);
            downloader = transfer.Downloader;
        }

        transfer.ReleaseReceiving();
        DeleteFiles(transfer.BasePath);

        // A recipient streaming it is told to discard what it got; only now, so that whoever hears of the failure
        // finds the files gone (an open read handle keeps working on Linux).
        downloader?.WakeMediaWriter();
    }

    /// <summary>Removes a spooled (complete) transfer: delivered or expired.</summary>
    private void Remove(MediaTransfer transfer)
    {
        lock (_lock)
        {
            if (transfer.State == MediaTransferState.Spooled)
            {
                StateOf(transfer.Recipient).Outbox.Remove(transfer);
            }

            transfer.Retire();
            MediaPartnerState sender = StateOf(transfer.Sender);
            if (sender.Transfers.Remove(transfer.Id))
            {
                sender.SpoolBytes -= transfer.TotalSize;
            }
        }

        DeleteFiles(transfer.BasePath);
    }

    /// <summary>A media event for the support seam; cheap when nobody listens.</summary>
    private void Report(Routing.MediaEventKind kind, PartnerInfo sender, PartnerInfo? recipient, UInt128 id, long bytes, long totalBytes, ErrorCode code, string? detail, long connectionId)
    {
        if (!_support.IsEmpty)
        {
            _support.MediaEvent(new Routing.MediaEventInfo(kind, sender, recipient, id, bytes, totalBytes, code, detail, connectionId, _clock.GetUtcNow().ToUnixTimeMilliseconds()));
        }
    }

    private void Report(Routing.MediaEventKind kind, MediaTransfer transfer, long bytes, long connectionId, ErrorCode code = ErrorCode.Unspecified, string? detail = null) =>
        Report(kind, transfer.Sender, transfer.Recipient, transfer.Id, bytes, transfer.TotalSize, code, detail, connectionId);

    /// <summary>A session of the recipient partner has sent the whole blob (its MediaClose is written).</summary>
    public void ReportDelivered(MediaTransfer transfer, long connectionId) => Report(Routing.MediaEventKind.Delivered, transfer, transfer.TotalSize, connectionId);

    private void DeleteFiles(string basePath)
    {
        try
        {
            _spool.Delete(basePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RelayLog.MediaSpoolFailed(_logger, basePath, ex);
        }
    }

    private void WakeRecipient(PartnerInfo partner)
    {
        IMediaPeer[] peers;
        lock (_lock)
        {
            peers = [.. StateOf(partner).Peers];
        }

        foreach (IMediaPeer peer in peers)
        {
            peer.WakeMediaWriter();
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
        List<MediaTransfer>? unread = null;
        lock (_lock)
        {
            foreach (MediaPartnerState sender in _state.Values)
            {
                foreach (MediaTransfer transfer in sender.Transfers.Values)
                {
                    if (transfer.IsSenderIdle(nowTicks, idleMs))
                    {
                        (stalled ??= []).Add(transfer);
                    }
                    else if (transfer.IsRecipientStalled(nowTicks, idleMs))
                    {
                        (unread ??= []).Add(transfer);
                    }
                    else if (transfer.State == MediaTransferState.Spooled && transfer.ExpiresAtMs <= nowMs)
                    {
                        (expired ??= []).Add(transfer);
                    }
                }
            }
        }

        foreach (MediaTransfer transfer in stalled ?? [])
        {
            if (!transfer.TryTimeOut(nowTicks, idleMs, out IMediaPeer? uploader))
            {
                continue;
            }

            AbortOutsideLock(transfer);
            RelayLog.MediaIdleTimeout(_logger, transfer.Sender.Id, transfer.Received, transfer.TotalSize);
            Report(Routing.MediaEventKind.Failed, transfer, transfer.Received, 0, ErrorCode.MediaIdleTimeout, "no chunk in time; the partial blob is deleted");
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
            if (!transfer.TryStopStalledForwarding(nowTicks, idleMs, out IMediaPeer? downloader))
            {
                continue;
            }

            RelayLog.MediaRecipientStalled(_logger, transfer.Recipient.Id, transfer.Forwarded, transfer.Received);
            downloader?.WakeMediaWriter();
        }

        foreach (MediaTransfer transfer in expired ?? [])
        {
            // Logged after the files are gone: the line says "deleted", and tests and admins act on it.
            Remove(transfer);
            RelayLog.MediaExpired(_logger, transfer.Sender.Id, transfer.Recipient.Id, transfer.TotalSize);
            Report(Routing.MediaEventKind.Failed, transfer, transfer.TotalSize, 0, ErrorCode.Expired, "expired in the spool before the recipient took it");
        }
    }
}
