using System.Buffers;
using Microsoft.Win32.SafeHandles;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Media;

/// <summary>
/// Where one recipient session is in the blob it streams to its partner: the transfer, the next offset, whether its
/// MediaOpen went out, and the source of the next chunk, the spool file until the session catches up with the
/// sender, then (cut-through) the forwarding queue the sender's read loop fills. Used by that session's writer only.
/// </summary>
internal sealed class MediaDownloadCursor
{
    private readonly MediaRouter _router;
    private readonly IMediaPeer _peer;
    private readonly MediaForwardQueue _forward = new();
    private SafeFileHandle? _file;
    private byte[]? _buffer;

    public MediaDownloadCursor(MediaRouter router, IMediaPeer peer)
    {
        _router = router;
        _peer = peer;
    }

    /// <summary>The blob being streamed; null between blobs.</summary>
    public MediaTransfer? Transfer { get; private set; }

    /// <summary>Offset of the next byte to send.</summary>
    public long Offset { get; private set; }

    /// <summary>The MediaOpen of <see cref="Transfer"/> has been written (its spool file is open).</summary>
    public bool OpenSent { get; private set; }

    /// <summary>Chunks come from the forwarding queue, not the spool file.</summary>
    public bool Forwarding { get; private set; }

    /// <summary>Takes the next blob waiting for this partner; false when none is.</summary>
    public bool TryBegin()
    {
        if (_router.TakeOutbound(_peer) is not { } next)
        {
            return false;
        }

        Transfer = next;
        Offset = next.DeliveryStartOffset;
        OpenSent = false;
        return true;
    }

    /// <summary>
    /// Opens the spool file; false when it is not there (gone meanwhile, or dropped as unreadable): the next step ends
    /// the blob. Then the MediaOpen to write is <see cref="OpenFrame"/>.
    /// </summary>
    public bool TryOpenFile()
    {
        _file = _router.OpenSpooled(Transfer!, _peer);
        return _file is not null;
    }

    /// <summary>The MediaOpen for the recipient: the sender's, with delivery_offset when it resumes mid-blob.</summary>
    public MediaOpen OpenFrame => Offset == 0 ? Transfer!.Open : new MediaOpen(Transfer!.Open) { DeliveryOffset = (ulong)Offset };

    public void MarkOpenSent() => OpenSent = true;

    /// <summary>
    /// When the router stopped the cut-through (this partner stopped reading), what was queued is in the file too:
    /// the queue is dropped and the file read from <see cref="Offset"/> on.
    /// </summary>
    public void FollowRouterForwarding()
    {
        if (Forwarding && Transfer!.Forward != _forward)
        {
            Forwarding = false;
            _forward.Reset();
        }
    }

    /// <summary>The next forwarded chunk, as a ready MediaChunk frame; give it back with <see cref="Forwarded"/> once written.</summary>
    public bool TryTakeForwarded(out ForwardedChunk chunk) => _forward.TryTake(out chunk);

    /// <summary>A forwarded chunk was written (or its write failed): its buffer goes back.</summary>
    public void ReturnForwarded(in ForwardedChunk chunk) => _forward.Return(chunk);

    /// <summary>The recipient's connection has the blob up to the chunk's end: the sender is granted credit from there.</summary>
    public void Forwarded(in ForwardedChunk chunk)
    {
        Offset = chunk.End;
        Transfer!.OnForwarded(Offset);
    }

    /// <summary>Caught up with the sender: from here on its chunks come straight from its read loop (false: it got ahead again).</summary>
    public bool TryStartForwarding()
    {
        Forwarding = Transfer!.TryStartForwarding(_peer, _forward, Offset);
        return Forwarding;
    }

    /// <summary>
    /// Reads the next chunk below <paramref name="available"/> from the spool file into the cursor's buffer, behind its
    /// frame header; returns the frame (empty when the file cannot be read: the router has dropped the blob and the
    /// next step ends it).
    /// </summary>
    public ReadOnlyMemory<byte> ReadSpooledChunk(long available)
    {
        MediaTransfer transfer = Transfer!;
        _buffer ??= ArrayPool<byte>.Shared.Rent(MediaChunkWire.MaxHeaderBytes + MediaRouter.DeliveryChunkBytes);
        int length = (int)Math.Min(MediaRouter.DeliveryChunkBytes, available - Offset);
        int header = MediaChunkWire.WriteHeader(_buffer, transfer.Id, (ulong)Offset, length);
        try
        {
            int read = _router.Spool.Read(_file!, _buffer.AsSpan(header, length), Offset);
            if (read != length)
            {
                throw new IOException($"spooled blob {transfer.BasePath} is shorter than its declared {transfer.TotalSize} bytes");
            }
        }
        catch (IOException ex)
        {
            _router.DropUnreadable(transfer, _peer, ex);
            return ReadOnlyMemory<byte>.Empty;
        }

        Offset += length;
        return _buffer.AsMemory(0, header + length);
    }

    /// <summary>The MediaClose went out: the blob waits for the recipient's MediaReceived.</summary>
    public void Sent()
    {
        Transfer!.MarkSent(_peer);
        End();
    }

    /// <summary>Done with the blob (sent, taken over, gone): forwarding stops and the file is closed.</summary>
    public void End()
    {
        if (Forwarding)
        {
            Transfer!.StopForwarding(_forward);
            _forward.Reset();
            Forwarding = false;
        }

        _file?.Dispose();
        _file = null;
        Transfer = null;
    }

    /// <summary>After the session's writer has stopped: ends the blob and frees the buffer.</summary>
    public void Release()
    {
        End();
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = null;
        }
    }
}
