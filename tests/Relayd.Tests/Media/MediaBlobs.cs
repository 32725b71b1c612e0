using System.Security.Cryptography;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Media;

/// <summary>
/// Test blobs of any size without holding them in memory: a seekable stream whose every 64 KiB block is a different
/// rotation of one random block, so a lost, duplicated or misplaced chunk changes the SHA-256.
/// </summary>
internal sealed class PatternStream : Stream
{
    private const int BlockBytes = 64 * 1024;
    private readonly byte[] _block;
    private readonly long _length;
    private long _position;

    public PatternStream(long length, int seed)
    {
        _length = length;
        _block = new byte[BlockBytes];
        new Random(seed).NextBytes(_block);
    }

    /// <summary>When set, called with the position before every read (tests break connections from here).</summary>
    public Action<long>? BeforeRead { get; set; }

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => _length;

    public override long Position { get => _position; set => _position = value; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        BeforeRead?.Invoke(_position);
        int total = (int)Math.Min(buffer.Length, _length - _position);
        int done = 0;
        while (done < total)
        {
            long block = _position / BlockBytes;
            int within = (int)(_position % BlockBytes);
            int rotation = (int)(block * 7919 % BlockBytes);
            int start = (within + rotation) % BlockBytes;
            int n = Math.Min(Math.Min(BlockBytes - within, BlockBytes - start), total - done);
            _block.AsSpan(start, n).CopyTo(buffer[done..]);
            done += n;
            _position += n;
        }

        return total;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => _length + offset,
    };

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

internal static class MediaBlobs
{
    public static byte[] Sha256Of(Stream stream)
    {
        stream.Position = 0;
        return SHA256.HashData(stream);
    }

    /// <summary>A MediaOpen for <paramref name="content"/> (its SHA-256 computed here, from position 0).</summary>
    public static MediaOpen Open(string from, string to, Stream content, byte[]? sha256 = null, ContentKind kind = ContentKind.Image) => new()
    {
        TransferId = ByteString.CopyFrom(Guid.NewGuid().ToByteArray()),
        SenderPartner = from,
        SenderUser = ByteString.CopyFromUtf8("sender-1"),
        RecipientPartner = to,
        RecipientUser = ByteString.CopyFromUtf8("user-1"),
        ContentKind = kind,
        TotalSize = (ulong)content.Length,
        Sha256 = ByteString.CopyFrom(sha256 ?? Sha256Of(content)),
        ChunkSize = 128 * 1024,
    };

    /// <summary>Reads the next incoming blob to its end; returns its open, length and SHA-256 (and acknowledges it).</summary>
    public static async Task<(MediaOpen Open, long Length, byte[] Sha256)> ReceiveAsync(RelayClient client, bool acknowledge = true, int seconds = 60)
    {
        IncomingMedia media = await client.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(seconds), TestContext.Current.CancellationToken);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        long length = await HashAsync(media.Content, hash, deadline.Token);
        if (acknowledge)
        {
            await client.AcknowledgeMediaAsync(media.Open);
        }

        return (media.Open, length, hash.GetHashAndReset());
    }

    /// <summary>Reads <paramref name="content"/> to its end into <paramref name="hash"/>; returns the bytes read.</summary>
    public static async Task<long> HashAsync(Stream content, IncrementalHash hash, CancellationToken cancellationToken = default)
    {
        byte[] buffer = new byte[256 * 1024];
        long length = 0;
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            length += read;
        }

        return length;
    }

    /// <summary>Files left in a spool directory (none when it does not exist).</summary>
    public static string[] SpoolFiles(string directory) =>
        Directory.Exists(directory) ? Directory.GetFiles(directory, "*", SearchOption.AllDirectories) : [];
}
