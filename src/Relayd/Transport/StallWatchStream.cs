using System.Runtime.CompilerServices;
using Relayd.Diagnostics;

namespace Relayd.Transport;

/// <summary>
/// The socket stream under a partner's TLS stream, noting when the write in progress began. TLS writes it one
/// record (at most 16 KiB) at a time, so a write pending for long means the partner has stopped taking bytes,
/// however large the caller's buffer: that is what <see cref="PartnerSession.CheckProgress"/> looks for. It also counts
/// the bytes that cross the socket (<c>relayd.network.received</c> / <c>.sent</c>).
/// </summary>
internal sealed class StallWatchStream : Stream
{
    private readonly Stream _inner;
    private readonly RelayMetrics _metrics;
    private long _writeStartedMs; // Environment.TickCount64 when the pending write began; 0 when none is pending
    private long _bytesReceived;  // this connection's; one reader and one writer each, so a volatile write suffices
    private long _bytesSent;

    public StallWatchStream(Stream inner, RelayMetrics metrics)
    {
        _inner = inner;
        _metrics = metrics;
    }

    /// <summary>Bytes read from this connection's socket (TLS included).</summary>
    public long BytesReceived => Volatile.Read(ref _bytesReceived);

    /// <summary>Bytes written to this connection's socket (TLS included).</summary>
    public long BytesSent => Volatile.Read(ref _bytesSent);

    /// <summary>How long the pending write has waited, in milliseconds; 0 when no write is pending.</summary>
    public long PendingWriteMs(long nowMs)
    {
        long started = Volatile.Read(ref _writeStartedMs);
        return started == 0 ? 0 : Math.Max(1, nowMs - started);
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ValueTask<int> read = _inner.ReadAsync(buffer, cancellationToken);
        if (read.IsCompletedSuccessfully)
        {
            int bytes = read.Result;
            Received(bytes);
            return new ValueTask<int>(bytes);
        }

        return AwaitReadAsync(read);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        int bytes = _inner.Read(buffer, offset, count);
        Received(bytes);
        return bytes;
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Volatile.Write(ref _writeStartedMs, Environment.TickCount64);
        ValueTask write = _inner.WriteAsync(buffer, cancellationToken);
        if (write.IsCompletedSuccessfully)
        {
            Volatile.Write(ref _writeStartedMs, 0);
            Sent(buffer.Length);
            return default;
        }

        return AwaitWriteAsync(write, buffer.Length);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        Volatile.Write(ref _writeStartedMs, Environment.TickCount64);
        try
        {
            _inner.Write(buffer, offset, count);
            Sent(count);
        }
        finally
        {
            Volatile.Write(ref _writeStartedMs, 0);
        }
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override void Flush() => _inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _inner.DisposeAsync();
        await base.DisposeAsync();
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> AwaitReadAsync(ValueTask<int> read)
    {
        int bytes = await read;
        Received(bytes);
        return bytes;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitWriteAsync(ValueTask write, int bytes)
    {
        try
        {
            await write;
            Sent(bytes);
        }
        finally
        {
            Volatile.Write(ref _writeStartedMs, 0);
        }
    }

    private void Received(int bytes)
    {
        _metrics.BytesReceived.Add(bytes);
        Volatile.Write(ref _bytesReceived, _bytesReceived + bytes);
    }

    private void Sent(int bytes)
    {
        _metrics.BytesSent.Add(bytes);
        Volatile.Write(ref _bytesSent, _bytesSent + bytes);
    }
}
