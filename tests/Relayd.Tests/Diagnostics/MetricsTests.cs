using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Relayd.Diagnostics;
using Relayd.Diagnostics.Prometheus;
using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Functional;
using Relayd.Tests.Infrastructure;
using Relayd.Tests.Media;

namespace Relayd.Tests.Diagnostics;

/// <summary>
/// The relay's metrics (meter "Relayd") count what a real relay did, over real TLS, as a listener sees them. Each
/// relay has its own meter, so these tests count exactly even while other tests run relays in parallel.
/// </summary>
public sealed class MetricsTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public MetricsTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Accepted_acked_and_delivered_envelopes_sessions_frames_bytes_and_commits_are_counted_as_they_happened()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        using var metrics = new RecordedMetrics(relay.Server.Metrics.Meter);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        RelayClient beta = await relay.ConnectAsync("beta");
        const int Count = 5;
        Envelope[] sent = [.. Enumerable.Range(0, Count).Select(_ => Envelopes.New("alpha", "beta", ciphertext: Envelopes.RandomCiphertext(3000)))];

        foreach (Envelope envelope in sent)
        {
            await alpha.SendAsync(envelope).Within();
        }

        Ack resent = await alpha.SendAsync(sent[0]).Within(); // answered from dedup: acked, not accepted again
        for (int i = 0; i < Count; i++)
        {
            await beta.AcknowledgeAsync(await beta.Deliveries.ReadAsync().Within());
        }

        await ReceiveDeliveredReceiptsAsync(alpha, Count);
        await Eventually(() => metrics.Sum("relayd.envelopes.delivered") >= Count);

        Assert.True(resent.Duplicate);
        Assert.Equal(Count, metrics.Sum("relayd.envelopes.accepted"));
        Assert.Equal(Count + 1, metrics.Sum("relayd.acks.sent"));
        Assert.Equal(Count, metrics.Sum("relayd.envelopes.delivered"));
        Assert.Equal(0, metrics.Sum("relayd.envelopes.refused"));
        Assert.Equal(2, metrics.Sum("relayd.sessions.active"));
        Assert.InRange(metrics.Sum("relayd.frames.received"), 2 * Count + 1, 10 * Count); // envelopes, resend, DeliveryAcks (and maybe pings)
        Assert.InRange(metrics.Sum("relayd.network.received"), (Count + 1) * 3000, long.MaxValue);
        Assert.InRange(metrics.Sum("relayd.network.sent"), Count * 3000, long.MaxValue);
        Assert.InRange(metrics.Sum("relayd.wal.bytes"), Count * 3000, long.MaxValue);
        Assert.InRange(metrics.Recorded("relayd.wal.commit.duration"), 1, long.MaxValue);
        Assert.Equal(0, metrics.Sum("relayd.media.bytes"));
        Assert.Equal(Count, metrics.Sum("relayd.envelopes.accepted", "partner", "alpha"));
        Assert.Equal(Count, metrics.Sum("relayd.envelopes.delivered", "partner", "beta"));
        Assert.Equal(1, metrics.Sum("relayd.sessions.active", "partner", "beta"));
        Assert.Equal(Count + 1, metrics.Recorded("relayd.ack.latency"));
        Assert.InRange(metrics.Recorded("relayd.wal.sync.duration"), 1, long.MaxValue);
        Assert.Equal(metrics.Recorded("relayd.wal.commit.duration"), metrics.Recorded("relayd.wal.commit.batch.size"));
        Assert.InRange(metrics.MostTags, 1, SeriesKey.MaxTags); // what the Prometheus exporter tells apart

        await beta.DisposeAsync();
        await Eventually(() => metrics.Sum("relayd.sessions.active") == 1);
    }

    [Fact]
    public async Task A_forged_sender_is_counted_as_refused_with_code_SENDER_MISMATCH_and_an_unapproved_partner_as_an_admission_refusal()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        using var metrics = new RecordedMetrics(relay.Server.Metrics.Meter);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        await Envelopes.RefusedAsync(() => alpha.SendAsync(Envelopes.New(from: "gamma", to: "beta")));
        await Envelopes.RefusedAsync(() => relay.ConnectAsync("mallory"));
        await Eventually(() => metrics.Sum("relayd.refusals") >= 1);

        Assert.Equal(1, metrics.Sum("relayd.envelopes.refused", "code", "SENDER_MISMATCH"));
        Assert.Equal(1, metrics.Sum("relayd.envelopes.refused", "partner", "alpha"));
        Assert.Equal(1, metrics.Sum("relayd.envelopes.refused"));
        Assert.Equal(0, metrics.Sum("relayd.envelopes.accepted"));
        Assert.Equal(1, metrics.Sum("relayd.refusals", "kind", "admission"));
        Assert.Equal(1, metrics.Sum("relayd.refusals"));
        Assert.Equal(1, metrics.Sum("relayd.sessions.active")); // alpha; mallory never got past admission
    }

    [Fact]
    public async Task Media_bytes_written_to_the_spool_are_counted()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        using var metrics = new RecordedMetrics(relay.Server.Metrics.Meter);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(1024 * 1024 + 77, seed: 3);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;

        await alpha.SendMediaAsync(open, blob).Within(60); // beta is away: verified and spooled

        Assert.Equal((long)open.TotalSize, metrics.Sum("relayd.media.bytes"));
    }

    [Fact]
    public async Task Each_relay_counts_only_its_own_traffic()
    {
        await using TestRelay busy = TestRelay.Start(_pki);
        await using TestRelay idle = TestRelay.Start(_pki);
        using var busyMetrics = new RecordedMetrics(busy.Server.Metrics.Meter);
        using var idleMetrics = new RecordedMetrics(idle.Server.Metrics.Meter);
        await using RelayClient alpha = await busy.ConnectAsync("alpha");

        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();

        Assert.Equal(1, busyMetrics.Sum("relayd.envelopes.accepted"));
        Assert.Equal(0, idleMetrics.Sum("relayd.envelopes.accepted"));
        Assert.Equal(0, idleMetrics.Sum("relayd.network.received"));
        Assert.Equal(0, idleMetrics.Sum("relayd.sessions.active"));
    }

    [Fact]
    public void Recording_allocates_nothing_with_or_without_a_listener()
    {
        using var metrics = new RelayMetrics();
        long seen = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref seen, value));
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref seen));
        listener.SetMeasurementEventCallback<int>((_, _, _, _) => Interlocked.Increment(ref seen));
        RecordEachKind(metrics); // warm up (first calls may JIT and build caches)

        long unobserved = AllocatedBy(() => RecordEachKind(metrics));
        listener.Start();
        RecordEachKind(metrics);
        long observed = AllocatedBy(() => RecordEachKind(metrics));
        listener.Dispose();
        using var exporter = new PrometheusExporter(metrics.Meter);
        RecordEachKind(metrics); // the exporter's first measurement of a tag set makes its series, once
        long exported = AllocatedBy(() => RecordEachKind(metrics));
        string scrape = System.Text.Encoding.UTF8.GetString(exporter.Collect());

        Assert.Equal(0, unobserved);
        Assert.Equal(0, observed);
        Assert.Equal(0, exported);
        Assert.True(Interlocked.Read(ref seen) >= 1000, "the listener saw the measurements");
        Assert.Contains("relayd_envelopes_refused_total{code=\"SENDER_MISMATCH\",partner=\"alpha\"} 200\n", scrape, StringComparison.Ordinal);
        Assert.Contains("relayd_wal_sync_duration_seconds_count 200\n", scrape, StringComparison.Ordinal);
    }

    private static readonly KeyValuePair<string, object?> Alpha = RelayMetrics.PartnerTag("alpha"); // as PartnerInfo keeps it

    /// <summary>Every instrument the data path records, with the tags it records them with.</summary>
    private static void RecordEachKind(RelayMetrics metrics)
    {
        for (int i = 0; i < 100; i++)
        {
            metrics.EnvelopesAccepted.Add(1, Alpha);
            metrics.EnvelopesRefused.Add(1, Alpha, RelayMetrics.CodeTag(ErrorCode.SenderMismatch));
            metrics.EnvelopesDelivered.Add(3, Alpha);
            metrics.AcksSent.Add(2);
            metrics.SessionsActive.Add(1, Alpha);
            metrics.FramesReceived.Add(4);
            metrics.BytesReceived.Add(1024);
            metrics.BytesSent.Add(1024);
            metrics.WalCommitDuration.Record(0.25);
            metrics.WalSyncDuration.Record(0.2);
            metrics.WalCommitBatchSize.Record(8192);
            metrics.WalBytes.Add(8192);
            metrics.AckLatency.Record(0.4);
            metrics.MediaBytes.Add(65536);
            metrics.Refusals.Add(1, RelayMetrics.KindTag("admission"));
            metrics.RecordReload(applied: (i & 1) == 0);
        }
    }

    private static long AllocatedBy(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    /// <summary>Reads receipts until DELIVERED ones for <paramref name="count"/> message ids arrived.</summary>
    private static async Task ReceiveDeliveredReceiptsAsync(RelayClient client, int count)
    {
        int delivered = 0;
        while (delivered < count)
        {
            Receipt receipt = await client.Receipts.ReadAsync().Within();
            Assert.Equal(ReceiptStatus.Delivered, receipt.Status);
            delivered += receipt.MessageIds.Count;
        }
    }

    private static async Task Eventually(Func<bool> condition, int seconds = 10)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }
}
