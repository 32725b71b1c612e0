using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.Win32.SafeHandles;
using Relayd.Media;
using Relayd.Protocol.Framing;
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
    private readonly MediaForwardQueue _mediaForward = new();
    private readonly byte[] _creditFrames = new byte[CreditWriteBytes];
    private const int CreditWriteBytes = 16 * MediaCreditWire.MaxFrameBytes;
    private MediaTransfer? _mediaOut;
    private bool _forwarding;
    private SafeFileHandle? _mediaFile;
    private long _mediaOffset;
    private bool _mediaOpenSent;
    private byte[]? _mediaBuffer;

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
    /// the sender's read loop copies each chunk into <see cref="_mediaForward"/> and this writer sends from there.
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
        if (_mediaOut is null)
        {
            if (Volatile.Read(ref _closeRequested) != 0 || _services.Media.TakeOutbound(this) is not { } next)
            {
                return wrote;
            }

            _mediaOut = next;
            _mediaOffset = next.DeliveryStartOffset;
            _mediaOpenSent = false;
        }

        MediaTransfer transfer = _mediaOut;
        if (!MediaRouter.IsSending(transfer, this))
        {
            if (_mediaOpenSent && transfer.State == MediaTransferState.Gone && transfer.AbortCode != ErrorCode.Unspecified)
            {
                // The upload failed while this partner was receiving it: tell it to discard what it got.
                await _stream.WriteAsync(new Frame { Error = new Error { Code = transfer.AbortCode, Detail = "the blob failed at the relay; discard what was received", TransferId = transfer.Open.TransferId } }.ToDelimitedArray(), abort);
            }

            // Otherwise the recipient asked for it again from another offset, or it is delivered or expired.
            EndMediaOut();
            return true;
        }

        if (!_mediaOpenSent)
        {
            _mediaFile = TryOpenSpooled(transfer);
            if (_mediaFile is null)
            {
                return true; // gone meanwhile, or dropped as unreadable: the next pass ends it
            }

            MediaOpen open = _mediaOffset == 0 ? transfer.Open : new MediaOpen(transfer.Open) { DeliveryOffset = (ulong)_mediaOffset };
            await _stream.WriteAsync(new Frame { MediaOpen = open }.ToDelimitedArray(), abort);
            _mediaOpenSent = true;
            return true;
        }

        if (_forwarding && transfer.Forward != _mediaForward)
        {
            // The router stopped the cut-through (this partner stopped reading): what was queued is in the file too.
            _forwarding = false;
            _mediaForward.Reset();
        }

        if (_forwarding)
        {
            if (_mediaForward.TryTake(out ForwardedChunk chunk))
            {
                try
                {
                    await _stream.WriteAsync(chunk.Frame, abort);
                }
                finally
                {
                    _mediaForward.Return(chunk);
                }

                _mediaOffset = chunk.End;
                _services.Media.OnForwarded(transfer, _mediaOffset);
                return true;
            }

            if (transfer.State != MediaTransferState.Sending || _mediaOffset < transfer.TotalSize)
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
            if (_mediaOffset < available)
            {
                int length = ReadSpooledChunk(transfer, available);
                if (length > 0)
                {
                    await _stream.WriteAsync(_mediaBuffer.AsMemory(0, length), abort);
                }

                return true;
            }

            if (!verified)
            {
                // Caught up with the sender: from here on its chunks come straight from its read loop.
                _forwarding = MediaRouter.TryStartForwarding(transfer, this, _mediaForward, _mediaOffset);
                return wrote | _forwarding;
            }
        }

        await _stream.WriteAsync(new Frame { MediaClose = new MediaClose { TransferId = transfer.Open.TransferId } }.ToDelimitedArray(), abort);
        _services.Media.MarkSent(transfer, this);
        EndMediaOut();
        return true;
    }

    /// <summary>
    /// Reads the next chunk from the spool file into the session's media buffer, behind its frame header; returns the
    /// frame's length, or 0 when the file cannot be read (the router has dropped the blob; the next pass ends it).
    /// </summary>
    private int ReadSpooledChunk(MediaTransfer transfer, long available)
    {
        _mediaBuffer ??= ArrayPool<byte>.Shared.Rent(MediaChunkWire.MaxHeaderBytes + MediaRouter.DeliveryChunkBytes);
        int length = (int)Math.Min(MediaRouter.DeliveryChunkBytes, available - _mediaOffset);
        int header = MediaChunkWire.WriteHeader(_mediaBuffer, transfer.Id, (ulong)_mediaOffset, length);
        try
        {
            int read = RandomAccess.Read(_mediaFile!, _mediaBuffer.AsSpan(header, length), _mediaOffset);
            if (read != length)
            {
                throw new IOException($"spooled blob {transfer.BasePath} is shorter than its declared {transfer.TotalSize} bytes");
            }
        }
        catch (IOException ex)
        {
            _services.Media.DropUnreadable(transfer, this, ex);
            return 0;
        }

        _mediaOffset += length;
        return header + length;
    }

    /// <summary>MediaCredit for the transfers this partner uploads, several frames per write, none allocated.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WriteCreditAsync(CancellationToken abort)
    {
        bool wrote = false;
        int length = 0;
        while (_creditDue.TryDequeue(out MediaTransfer? transfer))
        {
            long grant = MediaRouter.TakeCreditGrant(transfer, this);
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

    /// <summary>
    /// Opens the blob's spool file for streaming; null when it is not there: the transfer went away meanwhile (aborted,
    /// expired), or the file was lost, in which case the router drops the blob. A missing file never ends the session.
    /// </summary>
    private SafeFileHandle? TryOpenSpooled(MediaTransfer transfer)
    {
        try
        {
            // While it arrives the blob is the .part file; the rename at commit keeps an open handle valid.
            if (transfer.State == MediaTransferState.Receiving)
            {
                try
                {
                    return File.OpenHandle(transfer.BasePath + MediaSpool.PartExtension, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                }
                catch (FileNotFoundException)
                {
                    // Committed in the meantime.
                }
            }

            return File.OpenHandle(transfer.BasePath + MediaSpool.BlobExtension, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _services.Media.DropUnreadable(transfer, this, ex);
            return null;
        }
    }

    private void EndMediaOut()
    {
        if (_forwarding)
        {
            _services.Media.StopForwarding(_mediaOut!, _mediaForward);
            _forwarding = false;
        }

        _mediaFile?.Dispose();
        _mediaFile = null;
        _mediaOut = null;
    }

    /// <summary>After the writer has stopped: hands unfinished media back to the router and frees the buffers.</summary>
    private void ReleaseMedia()
    {
        _services.Media.Detach(this);
        EndMediaOut();
        if (_mediaBuffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_mediaBuffer);
            _mediaBuffer = null;
        }
    }
}
