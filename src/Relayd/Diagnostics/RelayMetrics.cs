using System.Diagnostics.Metrics;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics;

/// <summary>
/// The relay's counters, gauges and histograms, on one <see cref="Meter"/> named <see cref="MeterName"/> (an exporter
/// subscribes by that name; <see cref="Prometheus.PrometheusExporter"/> to this instance). Instrument names follow
/// OpenTelemetry's conventions; the Prometheus exporter turns them into Prometheus names (docs/operations.md lists
/// both). Each event is counted at one place in the data path; recording allocates nothing (tags are cached
/// <see cref="KeyValuePair{TKey,TValue}"/>s: a partner's from <see cref="PartnerTag"/>, made once per partner, and
/// codes from <see cref="CodeTag"/>, whose strings the proto's names cache).
/// </summary>
/// <remarks>
/// One instance per relay, created by the composition root and reached through the objects the data path already
/// holds: two relays in one process (tests, the demo) count apart, and a listener can tell them by
/// <see cref="Meter"/>. Public only because <c>WalOptions</c>, a public type, carries it to the log writer. Gauges of
/// state the data path does not count (backlog, media, log size) are read at collection time from sources the
/// composition root sets with <see cref="ObserveBacklog"/>, <see cref="ObserveMedia"/> and <see cref="ObserveLog"/>.
/// </remarks>
public sealed class RelayMetrics : IDisposable
{
    /// <summary>The meter's name: what an exporter (OpenTelemetry's <c>AddMeter</c>) subscribes to.</summary>
    public const string MeterName = "Relayd";

    // Bucket bounds in the instrument's unit (ms): 50 µs .. 10 s, the range of an fdatasync, a commit and an Ack.
    private static readonly IReadOnlyList<double> LatencyBoundsMs = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

    // One group commit: from one small envelope to the writer's largest batches.
    private static readonly IReadOnlyList<long> BatchBoundsBytes = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216];

    private static readonly IEnumerable<Measurement<long>> NoMeasurements = [];
    private static readonly KeyValuePair<string, object?> ReloadApplied = new("result", "applied");
    private static readonly KeyValuePair<string, object?> ReloadRefused = new("result", "refused");

    private Func<IEnumerable<Measurement<long>>>? _backlog;
    private Func<IEnumerable<Measurement<long>>>? _mediaTransfers;
    private Func<IEnumerable<Measurement<long>>>? _mediaSpool;
    private Func<long>? _logBytes;

    public RelayMetrics()
    {
        Meter = new Meter(MeterName);
        EnvelopesAccepted = Meter.CreateCounter<long>("relayd.envelopes.accepted", "{envelope}", "Envelopes accepted and stored for delivery, by sender partner (a resend answered from dedup is not counted again)");
        EnvelopesRefused = Meter.CreateCounter<long>("relayd.envelopes.refused", "{envelope}", "Envelopes refused, by sender partner and the refusal's error code (the proto's name)");
        EnvelopesDelivered = Meter.CreateCounter<long>("relayd.envelopes.delivered", "{envelope}", "Envelopes the recipient partner acknowledged (DeliveryAck), by recipient partner: delivered, their DELIVERED receipts due");
        AcksSent = Meter.CreateCounter<long>("relayd.acks.sent", "{ack}", "Acks sent to senders, each after its envelope was durable");
        SessionsActive = Meter.CreateUpDownCounter<long>("relayd.sessions.active", "{session}", "Partner sessions past Hello, open now, by partner");
        FramesReceived = Meter.CreateCounter<long>("relayd.frames.received", "{frame}", "Frames read from partner sessions and handled (after the Hello)");
        BytesReceived = Meter.CreateCounter<long>("relayd.network.received", "By", "Bytes read from partner connections' sockets (TLS records, handshakes included)");
        BytesSent = Meter.CreateCounter<long>("relayd.network.sent", "By", "Bytes written to partner connections' sockets (TLS records, handshakes included)");
        WalCommitDuration = Meter.CreateHistogram("relayd.wal.commit.duration", "ms", "Time of one group commit of the write-ahead log: pwrite and fdatasync of a batch", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBoundsMs });
        WalSyncDuration = Meter.CreateHistogram("relayd.wal.sync.duration", "ms", "Time of one fdatasync of a write-ahead log segment", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBoundsMs });
        WalCommitBatchSize = Meter.CreateHistogram("relayd.wal.commit.batch.size", "By", "Bytes of records one group commit wrote and synced (how well commits are grouped)", advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = BatchBoundsBytes });
        WalBytes = Meter.CreateCounter<long>("relayd.wal.bytes", "By", "Bytes of records the write-ahead log committed");
        WalFullWaits = Meter.CreateCounter<long>("relayd.wal.full_waits", "{wait}", "Times a session stopped reading its sender's envelopes until the write-ahead log's buffers had room (back-pressure: the disk is slower than what arrives), by partner");
        AckLatency = Meter.CreateHistogram("relayd.ack.latency", "ms", "Time from reading an envelope off the sender's connection to encoding its Ack for the socket (the wait for its group commit included)", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBoundsMs });
        MediaBytes = Meter.CreateCounter<long>("relayd.media.bytes", "By", "Media bytes received from senders and written to the spool");
        Refusals = Meter.CreateCounter<long>("relayd.refusals", "{connection}", "Connections refused before or at admission, by kind (tls_handshake, handshake_timeout, admission)");
        Reloads = Meter.CreateCounter<long>("relayd.reloads", "{reload}", "Configuration reloads, by result (applied, refused: the file failed validation and the old configuration kept running)");
        Meter.CreateObservableGauge("relayd.backlog.envelopes", () => _backlog?.Invoke() ?? NoMeasurements, "{envelope}", "Envelopes waiting for a recipient partner, by partner and where they are held (memory: in its queues; log_only: spilled, in the write-ahead log only)");
        Meter.CreateObservableGauge("relayd.media.transfers.open", () => _mediaTransfers?.Invoke() ?? NoMeasurements, "{transfer}", "Media transfers open now, by sender partner");
        Meter.CreateObservableGauge("relayd.media.spool", () => _mediaSpool?.Invoke() ?? NoMeasurements, "By", "Spool space held now (open and undelivered blobs), by sender partner");
        Meter.CreateObservableGauge("relayd.wal.size", () => _logBytes?.Invoke() ?? 0, "By", "Bytes of the write-ahead log's segment files");
    }

    public Meter Meter { get; }

    /// <summary>Tagged with the sender's <see cref="PartnerTag"/>.</summary>
    public Counter<long> WalFullWaits { get; }

    /// <summary>Tagged with the sender's <see cref="PartnerTag"/>.</summary>
    public Counter<long> EnvelopesAccepted { get; }

    /// <summary>Tagged with the sender's <see cref="PartnerTag"/> and <see cref="CodeTag"/>.</summary>
    public Counter<long> EnvelopesRefused { get; }

    /// <summary>Tagged with the recipient's <see cref="PartnerTag"/>.</summary>
    public Counter<long> EnvelopesDelivered { get; }

    public Counter<long> AcksSent { get; }

    /// <summary>Tagged with the session's <see cref="PartnerTag"/>.</summary>
    public UpDownCounter<long> SessionsActive { get; }

    public Counter<long> FramesReceived { get; }

    public Counter<long> BytesReceived { get; }

    public Counter<long> BytesSent { get; }

    /// <summary>Milliseconds per commit.</summary>
    public Histogram<double> WalCommitDuration { get; }

    /// <summary>Milliseconds per fdatasync.</summary>
    public Histogram<double> WalSyncDuration { get; }

    /// <summary>Bytes per group commit.</summary>
    public Histogram<long> WalCommitBatchSize { get; }

    public Counter<long> WalBytes { get; }

    /// <summary>Milliseconds from an envelope read to its Ack encoded for the write.</summary>
    public Histogram<double> AckLatency { get; }

    public Counter<long> MediaBytes { get; }

    /// <summary>Tagged with <see cref="KindTag"/>.</summary>
    public Counter<long> Refusals { get; }

    /// <summary>Tagged <c>result</c> = <c>applied</c> or <c>refused</c>; recorded by <see cref="RecordReload"/>.</summary>
    public Counter<long> Reloads { get; }

    /// <summary>The <c>code</c> tag: the proto's name of <paramref name="code"/> (SENDER_MISMATCH), a cached string.</summary>
    public static KeyValuePair<string, object?> CodeTag(ErrorCode code) => new("code", ProtoNames.Of(code));

    /// <summary>The <c>kind</c> tag of <see cref="Refusals"/>; pass a constant (no new string per refusal).</summary>
    public static KeyValuePair<string, object?> KindTag(string kind) => new("kind", kind);

    /// <summary>The <c>partner</c> tag of <paramref name="partnerId"/>: make it once per partner and keep it (the data path passes the kept one).</summary>
    public static KeyValuePair<string, object?> PartnerTag(string partnerId) => new("partner", partnerId);

    /// <summary>Counts one configuration reload: <paramref name="applied"/>, or refused (the old configuration kept running).</summary>
    public void RecordReload(bool applied) => Reloads.Add(1, applied ? ReloadApplied : ReloadRefused);

    /// <summary>Where <c>relayd.backlog.envelopes</c> is read from at collection time (tags <c>partner</c>, <c>held</c>).</summary>
    public void ObserveBacklog(Func<IEnumerable<Measurement<long>>> source) => _backlog = source;

    /// <summary>Where <c>relayd.media.transfers.open</c> and <c>relayd.media.spool</c> are read from (tag <c>partner</c>).</summary>
    public void ObserveMedia(Func<IEnumerable<Measurement<long>>> openTransfers, Func<IEnumerable<Measurement<long>>> spoolBytes)
    {
        _mediaTransfers = openTransfers;
        _mediaSpool = spoolBytes;
    }

    /// <summary>Where <c>relayd.wal.size</c> is read from.</summary>
    public void ObserveLog(Func<long> logBytes) => _logBytes = logBytes;

    public void Dispose() => Meter.Dispose();
}
