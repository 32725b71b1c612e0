using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Relayd.LoadGen.Targets;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Security;

namespace Relayd.LoadGen.Backlog;

/// <summary>
/// <c>--backlog COUNT</c>: partner-1 offline while partner-0 sends COUNT envelopes to it (durable, acked), then
/// partner-1 connects and drains them; prints the fill rate, the drain rate (first byte after connecting to the last
/// delivery acknowledged), and the relay's peak RSS and CPU during the drain.
/// </summary>
internal static class BacklogRun
{
    private const int SendWindow = 4096; // unacknowledged envelopes in flight while filling (the standard run's 1024 x 4)
    private const int AckBatch = 512;

    public static async Task<int> RunAsync(DevPki pki, string? relayAddress, int? relayPid, long count, int size, int users, TextWriter log, bool optIn, string rateLimits, string? relaydExecutable, CancellationToken cancellationToken)
    {
        await using var target = new RelaydTarget(pki, relayAddress, partners: 2, relayPid, rateLimits: rateLimits, optIn: optIn, relaydExecutable: relaydExecutable);
        string address = await target.EnsureRelayAsync(cancellationToken);
        string[] hostPort = address.Split(':');
        X509Certificate2 ca = X509CertificateLoader.LoadCertificateFromFile(pki.CaCertPath);
        string[] recipients = [.. Enumerable.Range(0, Math.Max(1, users)).Select(i => "user-" + i.ToString(CultureInfo.InvariantCulture))];
        await using RelayClient sender = await ConnectAsync(pki, hostPort, ca, RelaydTarget.PartnerId(0), cancellationToken);
        if (optIn)
        {
            // The relay requires both users of a conversation to have opted in (its default): the recipient partner
            // registers its users once, then goes offline for the fill.
            await RelaydTarget.OptInAsync(sender, ["user-0", .. recipients], cancellationToken);
            await using RelayClient registering = await ConnectAsync(pki, hostPort, ca, RelaydTarget.PartnerId(1), cancellationToken);
            await RelaydTarget.OptInAsync(registering, ["user-0", .. recipients], cancellationToken);
        }

        ByteString ciphertext = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(size));
        var fill = Stopwatch.StartNew();
        var inFlight = new Task<Ack>?[SendWindow]; // a ring: envelope i waits for the ack of i - SendWindow
        for (long i = 0; i < count; i++)
        {
            int slot = (int)(i % SendWindow);
            if (inFlight[slot] is { } earlier)
            {
                await earlier; // a refusal throws: a backlog with holes measures nothing
            }

            inFlight[slot] = sender.SendAsync(new Envelope
            {
                MessageId = ByteString.CopyFrom(RandomNumberGenerator.GetBytes(16)),
                SenderPartner = RelaydTarget.PartnerId(0),
                SenderUser = ByteString.CopyFromUtf8("user-0"),
                RecipientPartner = RelaydTarget.PartnerId(1),
                RecipientUser = ByteString.CopyFromUtf8(recipients[i % recipients.Length]),
                ContentKind = ContentKind.Text,
                Ciphertext = ciphertext,
                ClientTimestampMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            }, cancellationToken);
        }

        await Task.WhenAll(inFlight.OfType<Task<Ack>>());
        double fillSeconds = fill.Elapsed.TotalSeconds;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"backlog: {count:N0} x {size} B envelopes partner-0 -> partner-1 (offline), {recipients.Length:N0} users: filled at {count / fillSeconds:N0} msg/s ({fillSeconds:0.0} s, every one acked: durable)"));

        using var sampler = new ProcessSampler(target.ServerPid);
        using var sampling = new CancellationTokenSource();
        Task sampleLoop = sampler.SampleUntilAsync(TimeSpan.FromMilliseconds(50), sampling.Token);

        var drain = Stopwatch.StartNew();
        long delivered = 0;
        double firstSeconds = 0;
        await using (RelayClient recipient = await ConnectAsync(pki, hostPort, ca, RelaydTarget.PartnerId(1), cancellationToken))
        {
            var batch = new List<ulong>(AckBatch);
            while (delivered < count && await recipient.Deliveries.WaitToReadAsync(cancellationToken))
            {
                while (recipient.Deliveries.TryRead(out Deliver? deliver))
                {
                    if (delivered++ == 0)
                    {
                        firstSeconds = drain.Elapsed.TotalSeconds;
                    }

                    batch.Add(deliver.DeliveryId);
                    if (batch.Count == AckBatch)
                    {
                        await recipient.AcknowledgeAsync(batch, cancellationToken);
                        batch.Clear();
                    }
                }

                if (batch.Count > 0)
                {
                    await recipient.AcknowledgeAsync(batch, cancellationToken);
                    batch.Clear();
                }
            }
        }

        double drainSeconds = drain.Elapsed.TotalSeconds;
        sampler.MarkEnd();
        await sampling.CancelAsync();
        await sampleLoop;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  drained by partner-1 after it connected: {delivered:N0} delivered and acked at {delivered / drainSeconds:N0} msg/s ({drainSeconds:0.0} s; first delivery after {firstSeconds * 1000:0} ms)"));
        if (target.ServerPid is not null)
        {
            log.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  relay during the drain: peak RSS {sampler.PeakRssBytes >> 20} MiB, CPU {sampler.CpuCores:0.00} cores ({sampler.CpuCores / (delivered / drainSeconds) * 1e6:0.0} µs/msg)"));
        }

        return delivered == count ? 0 : 1;
    }

    private static Task<RelayClient> ConnectAsync(DevPki pki, string[] hostPort, X509Certificate2 ca, string partner, CancellationToken cancellationToken) =>
        RelaydTarget.ConnectPartnerAsync(pki, hostPort, ca, partner, "relayd-loadgen-backlog", cancellationToken);
}
