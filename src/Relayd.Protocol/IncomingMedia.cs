using System.IO.Pipelines;
using System.Security.Cryptography;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>A blob the relay is streaming to this partner: what the sender declared, and the bytes as they arrive.</summary>
public sealed class IncomingMedia
{
    private readonly Pipe _pipe;

    internal IncomingMedia(MediaOpen open, Pipe pipe)
    {
        Open = open;
        TransferId = MediaChunkWire.ReadTransferId(open.TransferId);
        _pipe = pipe;
        Content = pipe.Reader.AsStream();
    }

    /// <summary>The MediaOpen as the sender wrote it: ids, size, SHA-256 of the (encrypted) blob.</summary>
    public MediaOpen Open { get; }

    /// <summary>
    /// The blob's bytes, from <see cref="StartOffset"/> on. Ends after the last byte; throws when the connection drops
    /// or the relay abandons this delivery (the relay then delivers it again, possibly on another connection).
    /// </summary>
    public Stream Content { get; }

    /// <summary>Offset of the first byte of <see cref="Content"/> (non-zero after <see cref="RelayClient.ResumeDownloadAsync"/>).</summary>
    public long StartOffset { get; internal init; }

    /// <summary>
    /// Reads the blob to its end, writing it to <paramref name="destination"/> (<see cref="Stream.Null"/> to only check
    /// it) and computing its SHA-256 on the way, straight from the receive buffers; true when that is the digest the
    /// sender declared. For a delivery from offset 0 (a resumed one holds only the rest of the blob).
    /// </summary>
    /// <exception cref="InvalidOperationException"><see cref="StartOffset"/> is not 0.</exception>
    public async Task<bool> CopyToAndVerifyAsync(Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (StartOffset != 0)
        {
            throw new InvalidOperationException($"this delivery starts at offset {StartOffset}: hash it together with the bytes received before");
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        PipeReader reader = _pipe.Reader;
        while (true)
        {
            ReadResult result = await reader.ReadAsync(cancellationToken);
            foreach (ReadOnlyMemory<byte> segment in result.Buffer)
            {
                hash.AppendData(segment.Span);
                await destination.WriteAsync(segment, cancellationToken);
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return hash.GetHashAndReset().AsSpan().SequenceEqual(Open.Sha256.Span);
            }
        }
    }

    internal long NextOffset { get; set; }

    internal UInt128 TransferId { get; }

    internal PipeWriter Writer => _pipe.Writer;
}
