using System.Diagnostics;
using System.Security.Cryptography;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Hosting.Commands;

/// <summary>The media part of <c>relayd demo</c>: a photo, a multi-MiB video and a corrupted upload, each with its fate.</summary>
internal sealed partial class DemoRun
{
    private async Task<bool> ShowMediaFatesAsync(RelayClient alpha, RelayClient beta, CancellationToken cancellationToken)
    {
        output.WriteLine("media                     size        route           relay                          at beta");
        bool allOk = true;
        foreach ((string name, int size, ContentKind kind, bool corrupt) in new[]
        {
            ("photo.jpg (encrypted)", 300 * 1024, ContentKind.Image, false),
            ("video.mp4 (encrypted)", 24 * 1024 * 1024, ContentKind.Video, false),
            ("tampered.bin", 1024 * 1024, ContentKind.File, true),
        })
        {
            // Random bytes stand in for the sender's ciphertext; the relay checks only size and SHA-256.
            byte[] blob = RandomNumberGenerator.GetBytes(size);
            byte[] digest = SHA256.HashData(blob);
            if (corrupt)
            {
                digest[0] ^= 0xFF;
            }

            var open = new MediaOpen
            {
                TransferId = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(16)),
                SenderPartner = alpha.PartnerId,
                SenderUser = ByteString.CopyFromUtf8("user-1"),
                RecipientPartner = beta.PartnerId,
                RecipientUser = ByteString.CopyFromUtf8("user-2"),
                ContentKind = kind,
                TotalSize = (ulong)size,
                Sha256 = ByteString.CopyFrom(digest),
            };

            string relayFate;
            string recipientFate;
            var stopwatch = Stopwatch.StartNew();
            // beta is connected, so it reads the blob while alpha uploads it (the relay paces alpha to beta's speed).
            using var stopReceiving = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            Task<bool> receiving = ReceiveVerifiedAsync(beta, stopReceiving.Token);
            try
            {
                await alpha.SendMediaAsync(open, new MemoryStream(blob), cancellationToken);
                relayFate = $"verified, fsynced ({stopwatch.ElapsedMilliseconds} ms)";
                bool intact = await receiving.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
                allOk &= intact && !corrupt;
                recipientFate = intact ? $"delivered, SHA-256 ok ({stopwatch.ElapsedMilliseconds} ms)" : "CORRUPT";
            }
            catch (RelayException ex)
            {
                relayFate = "refused: " + ProtoNames.Of(ex.Code);
                allOk &= corrupt && ex.Code == ErrorCode.MediaDigestMismatch;
                // beta was streaming it and is told to discard what it got.
                stopReceiving.CancelAfter(TimeSpan.FromSeconds(5));
                recipientFate = await receiving.ContinueWith(t => t.IsCompletedSuccessfully ? "delivered anyway" : "discarded, nothing kept", TaskScheduler.Default);
            }

            output.WriteLine($"{name,-25} {FormatSize(size),-11} {alpha.PartnerId + " -> " + beta.PartnerId,-15} {relayFate,-30} {recipientFate}");
        }

        output.WriteLine();
        return allOk;
    }

    /// <summary>beta's side: the next blob, read to its end, checked against its SHA-256 and acknowledged.</summary>
    private static async Task<bool> ReceiveVerifiedAsync(RelayClient beta, CancellationToken cancellationToken)
    {
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(cancellationToken);
        bool intact = await incoming.CopyToAndVerifyAsync(Stream.Null, cancellationToken);
        await beta.AcknowledgeMediaAsync(incoming.Open);
        return intact;
    }

    private static string FormatSize(long bytes) => bytes >= 1024 * 1024 ? $"{bytes / (1024.0 * 1024):0.#} MiB" : $"{bytes / 1024.0:0.#} KiB";
}
