using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Relayd.LoadGen.Targets;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Security;

namespace Relayd.LoadGen.Media;

/// <summary>
/// <c>--media SIZE</c>: blobs of SIZE from partner-0 to partner-1 through relayd, mutual TLS on both hops; prints
/// end-to-end MiB/s (first byte sent to last byte read by the recipient) and the relay process's RSS growth.
/// </summary>
internal static class MediaRun
{
    public static async Task<int> RunAsync(DevPki pki, string? relayAddress, int? relayPid, long size, int count, TextWriter log, CancellationToken cancellationToken, bool optIn = true, string rateLimits = "bench", string? relaydExecutable = null)
    {
        await using var target = new RelaydTarget(pki, relayAddress, partners: 2, relayPid, rateLimits: rateLimits, optIn: optIn, relaydExecutable: relaydExecutable);
        string address = await target.EnsureRelayAsync(cancellationToken);
        string[] hostPort = address.Split(':');
        X509Certificate2 ca = X509CertificateLoader.LoadCertificateFromFile(pki.CaCertPath);
        await using RelayClient sender = await ConnectAsync(pki, hostPort, ca, RelaydTarget.PartnerId(0), cancellationToken);
        await using RelayClient recipient = await ConnectAsync(pki, hostPort, ca, RelaydTarget.PartnerId(1), cancellationToken);
        if (optIn)
        {
            // The blobs and the text probe go user-0 -> user-1; the relay requires both to have opted in (its default).
            string[] users = ["user-0", "user-1"];
            await RelaydTarget.OptInAsync(sender, users, cancellationToken);
            await RelaydTarget.OptInAsync(recipient, users, cancellationToken);
        }

        // Warm-up: JIT, pools and the spool directory, outside the measurement and the RSS baseline.
        await TransferAsync(sender, recipient, new BlobStream(16L * 1024 * 1024, seed: 1), cancellationToken);

        // Text latency on the same connections: idle for 2 s, then during the transfers.
        var probe = new TextProbe(sender, recipient);
        using var probing = new CancellationTokenSource();
        Task consumer = probe.ConsumeAsync(probing.Token);
        string idleLatency = await probe.MeasureAsync(Task.Delay(2000, cancellationToken), cancellationToken);

        using var sampler = new ProcessSampler(target.ServerPid);
        long baseline = sampler.PeakRssBytes ?? 0;
        using var sampling = new CancellationTokenSource();
        Task sampleLoop = sampler.SampleUntilAsync(TimeSpan.FromMilliseconds(50), sampling.Token);

        var blobs = Enumerable.Range(0, count).Select(i => new BlobStream(size, seed: 100 + i)).ToArray();
        var digests = blobs.Select(b => b.Sha256()).ToArray(); // outside the timing: the sender hashes before it sends
        var stopwatch = Stopwatch.StartNew();
        double uploadSeconds = 0;
        var transfersDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<string> busyLatency = probe.MeasureAsync(transfersDone.Task, cancellationToken);
        for (int i = 0; i < count; i++)
        {
            (double upload, bool intact) = await TransferAsync(sender, recipient, blobs[i], cancellationToken, digests[i]);
            uploadSeconds += upload;
            if (!intact)
            {
                log.WriteLine("media: DIGEST MISMATCH at the recipient");
                return 1;
            }
        }

        double seconds = stopwatch.Elapsed.TotalSeconds;
        transfersDone.SetResult();
        string transferLatency = await busyLatency;
        await probing.CancelAsync();
        await consumer;
        sampler.MarkEnd();
        await sampling.CancelAsync();
        await sampleLoop;
        double mib = size * (double)count / (1024 * 1024);
        long growth = (sampler.PeakRssBytes ?? 0) - baseline;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"media: {count} x {size / (1024.0 * 1024):0.#} MiB partner-0 -> partner-1, mutual TLS 1.3 on both hops"));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  end to end (first byte sent -> last byte read, SHA-256 checked by relay and recipient): {mib / seconds:0} MiB/s ({seconds:0.00} s)"));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  upload (first byte sent -> MediaComplete, fsynced): {mib / uploadSeconds:0} MiB/s"));
        log.WriteLine($"  text envelopes (256 B every 10 ms, same connections), send -> delivered: idle {idleLatency}; during the transfer {transferLatency}");
        if (target.ServerPid is not null)
        {
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  relay RSS: baseline {baseline >> 20} MiB, peak {sampler.PeakRssBytes >> 20} MiB, growth {growth >> 20} MiB ({(growth / 1048576.0) / (mib / 1024):0.0} MiB per GiB moved); relay CPU {sampler.CpuCores:0.00} cores"));
        }

        return 0;
    }

    private static async Task<(double UploadSeconds, bool Intact)> TransferAsync(RelayClient sender, RelayClient recipient, BlobStream blob, CancellationToken cancellationToken, byte[]? digest = null)
    {
        digest ??= blob.Sha256();
        var open = new MediaOpen
        {
            TransferId = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(16)),
            SenderPartner = sender.PartnerId,
            SenderUser = ByteString.CopyFromUtf8("user-0"),
            RecipientPartner = recipient.PartnerId,
            RecipientUser = ByteString.CopyFromUtf8("user-1"),
            ContentKind = ContentKind.Video,
            TotalSize = (ulong)blob.Length,
            Sha256 = ByteString.CopyFrom(digest),
        };
        blob.Position = 0;
        var stopwatch = Stopwatch.StartNew();
        Task<bool> receive = ReceiveAsync(recipient, cancellationToken);
        await sender.SendMediaAsync(open, blob, cancellationToken);
        double upload = stopwatch.Elapsed.TotalSeconds;
        return (upload, await receive);
    }

    private static async Task<bool> ReceiveAsync(RelayClient recipient, CancellationToken cancellationToken)
    {
        IncomingMedia media = await recipient.IncomingMedia.ReadAsync(cancellationToken);
        bool intact = await media.CopyToAndVerifyAsync(Stream.Null, cancellationToken);
        await recipient.AcknowledgeMediaAsync(media.Open);
        return intact;
    }

    private static Task<RelayClient> ConnectAsync(DevPki pki, string[] hostPort, X509Certificate2 ca, string partner, CancellationToken cancellationToken) =>
        RelaydTarget.ConnectPartnerAsync(pki, hostPort, ca, partner, "relayd-loadgen-media", cancellationToken);

    /// <summary>Parses "300KiB", "64MiB", "1GiB" or a byte count.</summary>
    public static long ParseSize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        (string suffix, long unit)[] units = [("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10), ("G", 1L << 30), ("M", 1L << 20), ("K", 1L << 10)];
        foreach ((string suffix, long unit) in units)
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                return (long)(double.Parse(t[..^suffix.Length], CultureInfo.InvariantCulture) * unit);
            }
        }

        return long.Parse(t, CultureInfo.InvariantCulture);
    }
}
