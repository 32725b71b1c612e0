using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Channels;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

public sealed partial class RelayClient
{
    private const int DefaultMediaChunkBytes = 128 * 1024;

    private readonly Dictionary<UInt128, OutgoingMedia> _outgoingMedia = [];
    private readonly Channel<IncomingMedia> _incomingMedia = Channel.CreateUnbounded<IncomingMedia>(new UnboundedChannelOptions { SingleWriter = true });
    private IncomingMedia? _currentIncoming;

    /// <summary>
    /// Blobs the relay streams to this partner, one at a time per connection. Read each <see cref="IncomingMedia.Content"/>
    /// to its end (the relay waits while it is not read), check its SHA-256, store it and call
    /// <see cref="AcknowledgeMediaAsync"/>; until then the relay keeps its copy and delivers it again after a reconnect.
    /// </summary>
    public ChannelReader<IncomingMedia> IncomingMedia => _incomingMedia.Reader;

    /// <summary>
    /// Sends <paramref name="content"/> as the blob <paramref name="open"/> declares: MediaOpen, chunks within the
    /// relay's credit window, MediaClose. Completes when the relay has verified the SHA-256 and made the blob durable.
    /// </summary>
    /// <param name="open">Transfer id (16 bytes), partners, users, kind, total size, SHA-256 of the blob.</param>
    /// <param name="content">Exactly <see cref="MediaOpen.TotalSize"/> bytes, read from its current position.</param>
    /// <param name="cancellationToken">Stops sending; the relay keeps what it has for a later <see cref="ResumeMediaAsync"/>.</param>
    /// <exception cref="RelayException">The relay refused or dropped the transfer; <see cref="RelayException.Code"/> says why
    /// (MEDIA_TOO_LARGE, SPOOL_FULL, MEDIA_DIGEST_MISMATCH, ...).</exception>
    public Task<MediaComplete> SendMediaAsync(MediaOpen open, Stream content, CancellationToken cancellationToken = default) =>
        TransferMediaAsync(open, content, resume: false, cancellationToken);

    /// <summary>
    /// Continues a transfer begun earlier (on this or a lost connection): asks the relay for the next durable offset,
    /// seeks <paramref name="content"/> (the whole blob, seekable) there and sends the rest.
    /// </summary>
    /// <exception cref="RelayException">MEDIA_UNKNOWN_TRANSFER when the relay no longer has it (timed out, or never opened).</exception>
    public Task<MediaComplete> ResumeMediaAsync(MediaOpen open, Stream content, CancellationToken cancellationToken = default) =>
        TransferMediaAsync(open, content, resume: true, cancellationToken);

    /// <summary>Tells the relay this blob is stored on this partner's side; the relay deletes its copy.</summary>
    public ValueTask AcknowledgeMediaAsync(MediaOpen open)
    {
        ArgumentNullException.ThrowIfNull(open);
        WriteFrameLocked(new Frame { MediaReceived = new MediaReceived { TransferId = open.TransferId, SenderPartner = open.SenderPartner } });
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Asks the relay to (re)send a spooled blob from <paramref name="offset"/>, e.g. after a connection broke mid-download.
    /// It arrives on <see cref="IncomingMedia"/> with <see cref="IncomingMedia.StartOffset"/> = <paramref name="offset"/>.
    /// </summary>
    public ValueTask ResumeDownloadAsync(MediaOpen open, long offset)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        WriteFrameLocked(new Frame { MediaResume = new MediaResume { TransferId = open.TransferId, Offset = (ulong)offset, SenderPartner = open.SenderPartner } });
        return ValueTask.CompletedTask;
    }

    private async Task<MediaComplete> TransferMediaAsync(MediaOpen open, Stream content, bool resume, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(content);
        UInt128 id = MediaChunkWire.ReadTransferId(open.TransferId);
        if (_failure is { } failure)
        {
            throw failure;
        }

        var state = new OutgoingMedia();
        lock (_outgoingMedia)
        {
            if (!_outgoingMedia.TryAdd(id, state))
            {
                throw new InvalidOperationException("this transfer is already being sent on this connection");
            }
        }

        int chunkBytes = (int)Math.Min(DefaultMediaChunkBytes, Welcome.MaxFrameBytes == 0 ? DefaultMediaChunkBytes : Welcome.MaxFrameBytes - MediaChunkWire.MaxHeaderBytes);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(chunkBytes);
        try
        {
            long offset = 0;
            long total = (long)open.TotalSize;
            if (resume)
            {
                WriteFrameLocked(new Frame { MediaResume = new MediaResume { TransferId = open.TransferId } });
                MediaResumed resumed = await state.Resumed.Task.WaitAsync(cancellationToken);
                if (resumed.Complete)
                {
                    return new MediaComplete { TransferId = open.TransferId, TotalSize = open.TotalSize };
                }

                offset = (long)resumed.NextOffset;
                lock (state)
                {
                    state.CreditLimit = offset + (long)resumed.Credit;
                }

                content.Seek(offset, SeekOrigin.Begin);
            }
            else
            {
                WriteFrameLocked(new Frame { MediaOpen = open });
            }

            while (offset < total)
            {
                long credit = await state.WaitForCreditAsync(offset, cancellationToken);
                int length = (int)Math.Min(Math.Min(chunkBytes, credit - offset), total - offset);
                int read = await content.ReadAtLeastAsync(buffer.AsMemory(0, length), length, throwOnEndOfStream: false, cancellationToken);
                if (read < length)
                {
                    throw new InvalidOperationException($"the content ended at {offset + read} bytes, before the declared {total}");
                }

                lock (_writeLock)
                {
                    if (_failure is { } lost)
                    {
                        throw lost;
                    }

                    Span<byte> span = _output.Writer.GetSpan(MediaChunkWire.MaxHeaderBytes + length);
                    int header = MediaChunkWire.WriteHeader(span, id, (ulong)offset, length);
                    buffer.AsSpan(0, length).CopyTo(span[header..]);
                    _output.Writer.Advance(header + length);
                    FlushUnderLock();
                }

                offset += length;
            }

            WriteFrameLocked(new Frame { MediaClose = new MediaClose { TransferId = open.TransferId } });
            return await state.Completed.Task.WaitAsync(cancellationToken);
        }
        finally
        {
            lock (_outgoingMedia)
            {
                _outgoingMedia.Remove(id);
            }

            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void WriteFrameLocked(Frame frame)
    {
        lock (_writeLock)
        {
            if (_failure is { } failure)
            {
                throw failure;
            }

            FrameWriter.Write(_output.Writer, frame);
            FlushUnderLock();
        }
    }

    private OutgoingMedia? FindOutgoing(Google.Protobuf.ByteString transferId)
    {
        if (transferId.Length != MediaChunkWire.TransferIdBytes)
        {
            return null;
        }

        lock (_outgoingMedia)
        {
            return _outgoingMedia.GetValueOrDefault(MediaChunkWire.ReadTransferId(transferId));
        }
    }

    /// <summary>Media frames from the relay. Chunks of an incoming blob wait here while its reader is behind.</summary>
    private async ValueTask DispatchMediaAsync(Frame frame, CancellationToken cancellationToken)
    {
        switch (frame.BodyCase)
        {
            case Frame.BodyOneofCase.MediaCredit:
                FindOutgoing(frame.MediaCredit.TransferId)?.Grant((long)frame.MediaCredit.Bytes);
                break;
            case Frame.BodyOneofCase.MediaResumed:
                FindOutgoing(frame.MediaResumed.TransferId)?.Resumed.TrySetResult(frame.MediaResumed);
                break;
            case Frame.BodyOneofCase.MediaComplete:
                FindOutgoing(frame.MediaComplete.TransferId)?.Completed.TrySetResult(frame.MediaComplete);
                break;
            case Frame.BodyOneofCase.MediaOpen:
                // A new MediaOpen while one is unfinished: the relay abandoned that one (a resume asked for another).
                _currentIncoming?.Writer.Complete(new RelayException(ErrorCode.MediaOffsetMismatch, "the relay abandoned this delivery"));
                var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 4 * 1024 * 1024, resumeWriterThreshold: 2 * 1024 * 1024, useSynchronizationContext: false));
                long start = (long)frame.MediaOpen.DeliveryOffset;
                _currentIncoming = new IncomingMedia(frame.MediaOpen, pipe) { StartOffset = start, NextOffset = start };
                await _incomingMedia.Writer.WriteAsync(_currentIncoming, cancellationToken);
                break;
            case Frame.BodyOneofCase.MediaChunk:
                await ReceiveChunkAsync(frame.MediaChunk, cancellationToken);
                break;
            case Frame.BodyOneofCase.MediaClose:
                if (_currentIncoming is { } finished && finished.Open.TransferId == frame.MediaClose.TransferId)
                {
                    await finished.Writer.CompleteAsync();
                    _currentIncoming = null;
                }

                break;
        }
    }

    private ValueTask ReceiveChunkAsync(MediaChunk chunk, CancellationToken cancellationToken) =>
        chunk.TransferId.Length == MediaChunkWire.TransferIdBytes
            ? ReceiveChunkAsync(MediaChunkWire.ReadTransferId(chunk.TransferId), (long)chunk.Offset, new ReadOnlySequence<byte>(chunk.Data.Memory), cancellationToken)
            : ValueTask.CompletedTask;

    private async ValueTask ReceiveChunkAsync(UInt128 transferId, long offset, ReadOnlySequence<byte> data, CancellationToken cancellationToken)
    {
        if (_currentIncoming is not { } incoming || incoming.TransferId != transferId)
        {
            return;
        }

        if (offset != incoming.NextOffset)
        {
            _currentIncoming = null;
            await incoming.Writer.CompleteAsync(new RelayException(ErrorCode.MediaOffsetMismatch, $"chunk at {offset}, expected {incoming.NextOffset}"));
            return;
        }

        incoming.NextOffset += data.Length;
        foreach (ReadOnlyMemory<byte> segment in data)
        {
            incoming.Writer.Write(segment.Span);
        }

        // Waits while the blob's reader is more than the pipe's pause threshold behind: that backpressure reaches the relay.
        await incoming.Writer.FlushAsync(cancellationToken);
    }

    /// <summary>An Error naming a transfer this connection is sending: that send fails with it.</summary>
    private bool FailMedia(Error error)
    {
        if (error.TransferId.Length == 0)
        {
            return false;
        }

        if (_currentIncoming is { } incoming && incoming.Open.TransferId == error.TransferId)
        {
            // The blob being received failed at the relay (e.g. MEDIA_DIGEST_MISMATCH): its reader gets the error.
            _currentIncoming = null;
            incoming.Writer.Complete(RelayException.FromError(error));
            return true;
        }

        if (FindOutgoing(error.TransferId) is not { } outgoing)
        {
            return false;
        }

        outgoing.Fail(RelayException.FromError(error));
        return true;
    }

    /// <summary>The connection is gone: every send fails, the blob being received ends with the failure.</summary>
    private void FailAllMedia(Exception reason)
    {
        OutgoingMedia[] outgoing;
        lock (_outgoingMedia)
        {
            outgoing = [.. _outgoingMedia.Values];
        }

        foreach (OutgoingMedia media in outgoing)
        {
            media.Fail(reason);
        }

        _currentIncoming?.Writer.Complete(reason);
        _currentIncoming = null;
        _incomingMedia.Writer.TryComplete();
    }

    /// <summary>Credit and answers for one transfer this connection sends.</summary>
    private sealed class OutgoingMedia
    {
        private TaskCompletionSource? _creditWaiter;
        private Exception? _failure;

        public long CreditLimit { get; set; }

        public TaskCompletionSource<MediaResumed> Resumed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource<MediaComplete> Completed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Grant(long bytes)
        {
            TaskCompletionSource? waiter;
            lock (this)
            {
                CreditLimit += bytes;
                waiter = _creditWaiter;
                _creditWaiter = null;
            }

            waiter?.TrySetResult();
        }

        public void Fail(Exception reason)
        {
            TaskCompletionSource? waiter;
            lock (this)
            {
                _failure ??= reason;
                waiter = _creditWaiter;
                _creditWaiter = null;
            }

            waiter?.TrySetResult();
            Resumed.TrySetException(reason);
            Completed.TrySetException(reason);
        }

        /// <summary>Waits until the window reaches beyond <paramref name="offset"/>; returns the window's end.</summary>
        public async ValueTask<long> WaitForCreditAsync(long offset, CancellationToken cancellationToken)
        {
            while (true)
            {
                Task wait;
                lock (this)
                {
                    if (_failure is { } failure)
                    {
                        throw failure;
                    }

                    if (CreditLimit > offset)
                    {
                        return CreditLimit;
                    }

                    _creditWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    wait = _creditWaiter.Task;
                }

                await wait.WaitAsync(cancellationToken);
            }
        }
    }
}
