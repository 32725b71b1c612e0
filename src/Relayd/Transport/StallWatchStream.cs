using System.Runtime.CompilerServices;

namespace Relayd.Transport;

/// <summary>
/// The socket stream under a partner's TLS stream, noting when the write in progress began. TLS writes it one
/// record (at most 16 KiB) at a time, so a write pending for long means the partner has stopped taking bytes,
/// however large the caller's buffer: that is what <see cref="PartnerSession.CheckProgress"/> looks for.
/// </summary>
internal sealed class StallWatchStream : Stream
{
    private readonly Stream _inner;
    private long _writeStartedMs; // Environment.TickCount64 when the pending write began; 0 when none is pending

    public StallWatchStream(Stream inner) => _inner = inner;

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

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Volatile.Write(ref _writeStartedMs, Environment.TickCount64);
        ValueTask write = _inner.WriteAsync(buffer, cancellationToken);
        if (write.IsCompletedSuccessfully)
        {
            Volatile.Write(ref _writeStartedMs, 0);
            return default;
        }

        return AwaitWriteAsync(write);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count)
    {
        Volatile.Write(ref _writeStartedMs, Environment.TickCount64);
        try
        {
            _inner.Write(buffer, offset, count);
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

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AwaitWriteAsync(ValueTask write)
    {
        try
        {
            await write;
        }
        finally
        {
            Volatile.Write(ref _writeStartedMs, 0);
        }
    }
}
