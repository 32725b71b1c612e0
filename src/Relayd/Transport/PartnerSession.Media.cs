using System.Buffers;
using System.Collections.Concurrent;
using Relayd.Media;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Transport;

/// <summary>
/// The session's media side: frames of transfers this partner sends go to <see cref="MediaRouter"/>; blobs for this
/// partner are streamed from the spool by the writer, one chunk per writer pass so that envelopes, acks and receipts
/// interleave with a large transfer instead of waiting behind it.
/// </summary>
internal sealed partial class PartnerSession : IMediaPeer
{
    private readonly ConcurrentQueue<Frame> _mediaPosts = new();
    private readonly ConcurrentQueue<MediaTransfer> _creditDue = new();
    private readonly byte[] _creditFrames = new byte[CreditWriteBytes];
    private const int CreditWriteBytes = 16 * MediaCreditWire.MaxFrameBytes; // credits per write: 16 transfers' grants in one small TLS write
    private readonly MediaDownloadCursor _download;

    PartnerInfo IMediaPeer.Partner => Partner;

    void IMediaPeer.Reply(Frame frame) => WriteFrame(frame);

    void IMediaPeer.Post(Frame frame)
    {
        _mediaPosts.Enqueue(frame);
        _writerSignal.Set();
    }

    void IMediaPeer.WakeMediaWriter() => _writerSignal.Set();

    void IMediaPeer.AnnounceCredit(MediaTransfer transfer)
    {
        _creditDue.Enqueue(transfer);
        _writerSignal.Set();
    }

    /// <summary>Dispatches a media control frame (chunks take the in-place path in <see cref="TryHandleMediaChunk"/>).</summary>
    private void HandleMediaFrame(Frame frame)
    {
        MediaRouter media = _services.Media;
        switch (frame.BodyCase)
        {
            case Frame.BodyOneofCase.MediaOpen when _services.IsDraining:
                // Like a new envelope: transfers already open finish, a new one goes through another relay.
                media.RefuseOpen(this, frame.MediaOpen, ErrorCode.Draining, "the relay is draining and takes no new transfers; send it through another relay or retry later", (uint)_services.Limits.QueueFullRetryAfter.TotalMilliseconds);
                break;
            case Frame.BodyOneofCase.MediaOpen:
                media.Open(this, frame.MediaOpen);
                break;
            case Frame.BodyOneofCase.MediaClose:
                media.Close(this, frame.MediaClose);
                break;
            case Frame.BodyOneofCase.MediaResume:
                media.Resume(this, frame.MediaResume);
                break;
            case Frame.BodyOneofCase.MediaReceived:
                media.Received(this, frame.MediaReceived);
                break;
            case Frame.BodyOneofCase.MediaChunk:
                // Not in the canonical layout the fast path reads; same handling from the parsed message.
                UInt128 id = MediaChunkWire.ReadTransferId(frame.MediaChunk.TransferId);
                media.Chunk(this, id, frame.MediaChunk.Offset, new ReadOnlySequence<byte>(frame.MediaChunk.Data.Memory));
                break;
            default:
                throw new Protocol.RelayException(ErrorCode.UnexpectedFrame, $"partners do not send {frame.BodyCase} frames");
        }
    }

    /// <summary>A MediaChunk read in place: its data is written to the spool straight from the input pipe.</summary>
    private bool TryHandleMediaChunk(in ReadOnlySequence<byte> frame)
    {
        if (!MediaChunkWire.TryRead(frame, out UInt128 id, out ulong offset, out ReadOnlySequence<byte> data))
        {
            return false;
        }

        _services.Media.Chunk(this, id, offset, data);
        return true;
    }

    /// <summary>
    /// Writer source: posted media frames and credit grants, then one step of the blob being streamed to this partner
    /// (MediaOpen, one chunk, or MediaClose). Returns true when it wrote something.
    /// </summary>
    /// <remarks>
    /// A blob goes out from the spool file until this writer catches up with the sender; from then on (cut-through)
    /// the sender's read loop copies each chunk into the cursor's forwarding queue and this writer sends from there.
    /// </remarks>
    // Pooled: this runs once per 64 KiB chunk, and an await that does not complete at once would box a state machine.
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WriteMediaAsync(CancellationToken abort)
    {
        bool wrote = false;
        while (_mediaPosts.TryDequeue(out Frame? posted))
        {
            await _stream.WriteAsync(posted.ToDelimitedArray(), abort);
            wrote = true;
        }

        wrote |= await WriteCreditAsync(abort);
        MediaDownloadCursor download = _download;
        if (download.Transfer is null && (Volatile.Read(ref _closeRequested) != 0 || !download.TryBegin()))
        {
            return wrote;
        }

        MediaTransfer transfer = download.Transfer!;
        if (!transfer.IsDeliveringTo(this))
        {
            if (download.OpenSent && transfer.State == MediaTransferState.Gone && transfer.AbortCode != ErrorCode.Unspecified)
            {
                // The upload failed while this partner was receiving it: tell it to discard what it got.
                await _stream.WriteAsync(new Frame { Error = new Error { Code = transfer.AbortCode, Detail = "the blob failed at the relay; discard what was received", TransferId = transfer.Open.TransferId } }.ToDelimitedArray(), abort);
            }

            // Otherwise the recipient asked for it again from another offset, or it is delivered or expired.
            download.End();
            return true;
        }

        if (!download.OpenSent)
        {
            if (!download.TryOpenFile())
            {
                return true; // gone meanwhile, or dropped as unreadable: the next pass ends it
            }

            await _stream.WriteAsync(new Frame { MediaOpen = download.OpenFrame }.ToDelimitedArray(), abort);
            download.MarkOpenSent();
            return true;
        }

        download.FollowRouterForwarding();
        if (download.Forwarding)
        {
            if (download.TryTakeForwarded(out ForwardedChunk chunk))
            {
                try
                {
                    await _stream.WriteAsync(chunk.Frame, abort);
                }
                finally
                {
                    download.ReturnForwarded(chunk);
                }

                download.Forwarded(chunk);
                return true;
            }

            if (transfer.State != MediaTransferState.Sending || download.Offset < transfer.TotalSize)
            {
                // Waiting for the sender's next chunk (it wakes this writer), or for its MediaClose to be verified.
                return wrote;
            }
        }
        else
        {
            // State before Received: once Sending, every byte is on disk; while Receiving, those below Received are.
            bool verified = transfer.State == MediaTransferState.Sending;
            long available = verified ? transfer.TotalSize : transfer.Received;
            if (download.Offset < available)
            {
                ReadOnlyMemory<byte> frame = download.ReadSpooledChunk(available);
                if (!frame.IsEmpty)
                {
                    await _stream.WriteAsync(frame, abort);
                }

                return true;
            }

            if (!verified)
            {
                // Caught up with the sender: from here on its chunks come straight from its read loop.
                return wrote | download.TryStartForwarding();
            }
        }

        await _stream.WriteAsync(new Frame { MediaClose = new MediaClose { TransferId = transfer.Open.TransferId } }.ToDelimitedArray(), abort);
        download.Sent();
        _services.Media.ReportDelivered(transfer, ConnectionId);
        return true;
    }

    /// <summary>MediaCredit for the transfers this partner uploads, several frames per write, none allocated.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WriteCreditAsync(CancellationToken abort)
    {
        bool wrote = false;
        int length = 0;
        while (_creditDue.TryDequeue(out MediaTransfer? transfer))
        {
            long grant = transfer.TakeCreditGrant(this);
            if (grant > 0)
            {
                length += MediaCreditWire.Write(_creditFrames.AsSpan(length), transfer.Id, (ulong)grant);
            }

            if (length > CreditWriteBytes - MediaCreditWire.MaxFrameBytes || (_creditDue.IsEmpty && length > 0))
            {
                await _stream.WriteAsync(_creditFrames.AsMemory(0, length), abort);
                length = 0;
                wrote = true;
            }
        }

        return wrote;
    }

    /// <summary>After the writer has stopped: hands unfinished media back to the router and frees the buffers.</summary>
    private void ReleaseMedia()
    {
        _services.Media.Detach(this);
        _download.Release();
    }
}
