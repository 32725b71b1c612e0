using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using HdrHistogram;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.LoadGen;

internal sealed record LoadSettings(string Relay, string PkiDirectory, string Sender, string Recipient, int Count, int Size, int Window, int Users);

internal sealed record LoadResult(double Seconds, int Acked, int Delivered, int Refused, LongHistogram AckLatency)
{
    public string Format(LoadSettings s) =>
        $"{Acked / Seconds:N0} envelopes/s acked, {Delivered / Seconds:N0}/s delivered, {Acked * (double)s.Size / Seconds / (1 << 20):N1} MiB/s " +
        $"({s.Count:N0} x {s.Size} B, window {s.Window}, {s.Users} users, {Seconds:N2} s, refused {Refused}); " +
        $"ack latency ms p50 {Ms(50)} p90 {Ms(90)} p99 {Ms(99)} p99.9 {Ms(99.9)} max {AckLatency.GetMaxValue() / (double)TimeSpan.TicksPerMillisecond:N2}";

    private string Ms(double percentile) => (AckLatency.GetValueAtPercentile(percentile) / (double)TimeSpan.TicksPerMillisecond).ToString("N2");
}

/// <summary>One sender connection, one recipient connection; at most Window envelopes unacknowledged.</summary>
internal sealed class ClosedLoopRun(LoadSettings settings)
{
    public async Task<LoadResult> RunAsync(CancellationToken cancellationToken)
    {
        string[] hostPort = settings.Relay.Split(':');
        X509Certificate2 ca = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(settings.PkiDirectory, "ca.crt"));
        await using RelayClient sender = await ConnectAsync(hostPort, ca, settings.Sender, cancellationToken);
        await using RelayClient recipient = await ConnectAsync(hostPort, ca, settings.Recipient, cancellationToken);

        byte[] ciphertext = RandomNumberGenerator.GetBytes(settings.Size);
        ByteString payload = ByteString.CopyFrom(ciphertext);
        ByteString[] users = [.. Enumerable.Range(0, settings.Users).Select(i => ByteString.CopyFromUtf8("user-" + i))];
        ByteString senderUser = ByteString.CopyFromUtf8("load");
        long prefix = BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8));
        var histogram = new LongHistogram(TimeSpan.TicksPerMinute, 3);
        var window = new SemaphoreSlim(settings.Window);
        int refused = 0;
        Task<long> consumer = Task.Run(() => recipient.ConsumeAsync(_ => { }, settings.Count, cancellationToken), cancellationToken);
        Task receipts = Task.Run(() => DrainReceiptsAsync(sender, cancellationToken), cancellationToken);

        var stopwatch = Stopwatch.StartNew();
        for (int i = 0; i < settings.Count; i++)
        {
            await window.WaitAsync(cancellationToken);
            byte[] id = new byte[16];
            BinaryPrimitives.WriteInt64BigEndian(id, prefix);
            BinaryPrimitives.WriteInt64BigEndian(id.AsSpan(8), i);
            var envelope = new Envelope
            {
                MessageId = UnsafeByteOperations.UnsafeWrap(id),
                SenderPartner = settings.Sender,
                SenderUser = senderUser,
                RecipientPartner = settings.Recipient,
                RecipientUser = users[i % users.Length],
                ContentKind = ContentKind.Text,
                Ciphertext = payload,
            };
            long sentAt = Stopwatch.GetTimestamp();
            _ = sender.SendAsync(envelope, CancellationToken.None).ContinueWith(
                t =>
                {
                    if (t.IsCompletedSuccessfully)
                    {
                        lock (histogram)
                        {
                            histogram.RecordValue(Stopwatch.GetElapsedTime(sentAt).Ticks);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref refused);
                    }

                    window.Release();
                },
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        int delivered = (int)await consumer;
        double seconds = stopwatch.Elapsed.TotalSeconds;
        return new LoadResult(seconds, settings.Count - refused, delivered, refused, histogram);
    }

    private Task<RelayClient> ConnectAsync(string[] hostPort, X509Certificate2 ca, string partner, CancellationToken cancellationToken)
    {
        X509Certificate2 pem = X509Certificate2.CreateFromPemFile(
            Path.Combine(settings.PkiDirectory, "partners", partner + ".crt"), Path.Combine(settings.PkiDirectory, "partners", partner + ".key"));
        X509Certificate2 certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        return RelayClient.ConnectAsync(
            new RelayClientOptions { Host = hostPort[0], Port = int.Parse(hostPort[1], System.Globalization.CultureInfo.InvariantCulture), ClientCertificate = certificate, RelayRoots = [ca], ReceiveReceipts = true },
            cancellationToken);
    }

    private static async Task DrainReceiptsAsync(RelayClient sender, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (Receipt _ in sender.ReadReceiptsAsync(cancellationToken))
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or RelayException)
        {
            // Connection closed.
        }
    }
}
