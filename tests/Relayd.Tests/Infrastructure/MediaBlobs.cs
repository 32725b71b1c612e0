using System.Security.Cryptography;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Infrastructure;

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
