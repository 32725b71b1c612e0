using System.Buffers;

namespace Relayd.Wal;

public sealed partial class WriteAheadLog
{
    // Guarded by _appendLock: the buffer being filled, where the next record goes, and the space signal.
    private readonly Lock _appendLock = new();
    private WalWriteBuffer _filling;
    private WalSegment _tail;
    private long _tailOffset;
    private volatile WalSegment[] _segments;
    private TaskCompletionSource _spaceSignal = NewSignal();
    private bool _spaceWanted;
    private bool _disposed;
    private ulong _lastEnd; // where the newest reserved record ends (WalPosition): written under _appendLock, read without it

    /// <summary>
    /// Where the newest record appended so far ends (the log's end at open before any): once <see cref="DurablePosition"/>
    /// reaches it, every record appended before the call is durable.
    /// </summary>
    public WalPosition AppendedEnd => WalPosition.FromUInt64(Volatile.Read(ref _lastEnd));

    /// <summary>
    /// Appends a record whose payload is <paramref name="header"/> followed by <paramref name="body"/> (so a small
    /// caller header can prefix an envelope still sliced from a pipe, without an intermediate copy). Copies into the
    /// write buffer and returns at once; durability comes later (<see cref="WaitForCommitAsync"/>, <see cref="Committed"/>).
    /// Allocates nothing. Thread-safe.
    /// </summary>
    /// <param name="type">The caller's record type, 1..255 (0 marks empty space on disk).</param>
    /// <param name="header">The first bytes of the payload.</param>
    /// <param name="body">The rest of the payload.</param>
    /// <param name="position">Where the record starts; its end is <see cref="EndOf"/>(position, payload length).</param>
    /// <returns>False when the write buffer is full or the next segment is not ready yet: retry after <see cref="WaitForSpaceAsync"/>.</returns>
    /// <exception cref="ArgumentException">The payload is longer than <see cref="MaxPayloadBytes"/>, or the type is 0.</exception>
    /// <exception cref="WalDiskFullException">A new segment was needed and the disk is full (appends may succeed later).</exception>
    /// <exception cref="WalFailedException">The log has failed; nothing more is accepted.</exception>
    public bool TryAppend(byte type, ReadOnlySpan<byte> header, in ReadOnlySequence<byte> body, out WalPosition position)
    {
        long length = header.Length + body.Length;
        if (type == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "record type 0 is reserved for empty space");
        }

        if (length > MaxPayloadBytes)
        {
            throw new ArgumentException($"a record payload of {length} bytes exceeds the limit of {MaxPayloadBytes} bytes", nameof(body));
        }

        int payloadLength = (int)length;
        int size = WalRecordHeader.RecordSize(payloadLength);
        if (!TryReserve(size, out WalWriteBuffer buffer, out int at, out position))
        {
            return false;
        }

        try
        {
            Span<byte> record = buffer.Span(at, size);
            Span<byte> payload = record.Slice(WalRecordHeader.Size, payloadLength);
            header.CopyTo(payload);
            body.CopyTo(payload[header.Length..]);
            record[(WalRecordHeader.Size + payloadLength)..].Clear();
            WalRecordHeader.Write(record, payloadLength, type, WalRecordHeader.PayloadCrc(type, payload));
        }
        catch (Exception ex)
        {
            // The reserved bytes would reach the disk half-written: stop the log rather than write them.
            Fail("append", ex);
            throw;
        }
        finally
        {
            buffer.Release();
        }

        _writer.Wake();
        return true;
    }

    /// <summary>Appends a record with the given payload; see <see cref="TryAppend(byte, ReadOnlySpan{byte}, in ReadOnlySequence{byte}, out WalPosition)"/>.</summary>
    public bool TryAppend(byte type, ReadOnlySpan<byte> payload, out WalPosition position) =>
        TryAppend(type, payload, ReadOnlySequence<byte>.Empty, out position);

    /// <summary>
    /// Completes when a <see cref="TryAppend(byte, ReadOnlySpan{byte}, out WalPosition)"/> that returned false is worth
    /// retrying: the log writer freed a buffer or the next segment finished preparing (or failed).
    /// </summary>
    public ValueTask WaitForSpaceAsync(CancellationToken cancellationToken = default)
    {
        Task signal;
        lock (_appendLock)
        {
            ThrowIfUnusable();
            if (_filling.RecordBytes == 0 && !_preparer.IsPending)
            {
                return ValueTask.CompletedTask;
            }

            _spaceWanted = true;
            signal = _spaceSignal.Task;
        }

        return new ValueTask(cancellationToken.CanBeCanceled ? signal.WaitAsync(cancellationToken) : signal);
    }

    /// <summary>Bytes appended and not yet taken by the log writer (a racy read, for the commit policy).</summary>
    internal int PendingBytes => Volatile.Read(ref _filling).RecordBytes;

    /// <summary>
    /// The log writer takes the filled buffer as its next batch and leaves <paramref name="empty"/> in its place, begun
    /// where the batch ends (the writer then copies the batch's last partial page into its prefix).
    /// </summary>
    internal WalWriteBuffer? TakeBatch(WalWriteBuffer empty)
    {
        lock (_appendLock)
        {
            if (_filling.RecordBytes == 0)
            {
                return null;
            }

            WalWriteBuffer batch = _filling;
            empty.Begin(_tail, _tailOffset);
            _filling = empty;
            SignalSpace(always: false);
            return batch;
        }
    }

    private bool TryReserve(int size, out WalWriteBuffer buffer, out int at, out WalPosition position)
    {
        lock (_appendLock)
        {
            ThrowIfUnusable();
            buffer = _filling;
            at = 0;
            position = default;
            if (_tailOffset + size > _tail.Length && !TryMoveToNextSegment())
            {
                return false;
            }

            if (!buffer.TryReserve(_tail, _tailOffset, size, out at))
            {
                return false;
            }

            position = new WalPosition(_tail.Number, (uint)_tailOffset);
            _tailOffset += size;
            Volatile.Write(ref _lastEnd, new WalPosition(_tail.Number, (uint)_tailOffset).ToUInt64());
            return true;
        }
    }

    /// <summary>
    /// The record does not fit in what is left of the tail segment: it goes to the next one and the rest of this one
    /// stays zero. Called under the lock.
    /// </summary>
    private bool TryMoveToNextSegment()
    {
        ulong number = _tail.Number + 1;
        switch (_preparer.TryTake(number, out WalSegment? next, out Exception? error))
        {
            case WalSegmentPreparer.Outcome.Ready:
                _segments = [.. _segments, next!];
                _tail = next!;
                _tailOffset = 0;
                return true;
            case WalSegmentPreparer.Outcome.Pending:
                return false;
            default:
                string name = WalSegment.FileNameOf(number);
                throw WalDiskFullException.IsDiskFull(error!)
                    ? new WalDiskFullException($"the disk holding {Directory} is full: WAL segment {name} ({_options.SegmentBytes} bytes) could not be created; appends resume once space is freed", error)
                    : new WalException($"WAL segment {name} could not be created: {error!.Message}", error);
        }
    }

    private void OnSegmentPrepared()
    {
        lock (_appendLock)
        {
            SignalSpace(always: false);
        }
    }

    /// <summary>Wakes <see cref="WaitForSpaceAsync"/> callers. Called under the lock.</summary>
    private void SignalSpace(bool always)
    {
        if (_spaceWanted || always)
        {
            _spaceWanted = false;
            TaskCompletionSource signal = _spaceSignal;
            _spaceSignal = NewSignal();
            signal.TrySetResult();
        }
    }

    private void ThrowIfUnusable()
    {
        Exception? failure = Failure;
        if (failure is not null)
        {
            throw new WalFailedException($"the write-ahead log in {Directory} has failed and accepts no more records: {failure.Message}", failure);
        }

        ObjectDisposedException.ThrowIf(_disposed, this);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
