using System.Diagnostics.Metrics;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics;

/// <summary>
/// The relay's counters and histograms, on one <see cref="Meter"/> named <see cref="MeterName"/> (an exporter
/// subscribes by that name). Instrument names follow OpenTelemetry's conventions. Each event is counted at one place
/// in the data path; recording allocates nothing (no tags, or one tag whose value is a cached string).
/// </summary>
/// <remarks>
/// One instance per relay, created by the composition root and reached through the objects the data path already
/// holds: two relays in one process (tests, the demo) count apart, and a listener can tell them by
/// <see cref="Meter"/>. Public only because <c>WalOptions</c>, a public type, carries it to the log writer.
/// </remarks>
public sealed class RelayMetrics : IDisposable
{
    /// <summary>The meter's name: what an exporter (OpenTelemetry's <c>AddMeter</c>) subscribes to.</summary>
    public const string MeterName = "Relayd";

    public RelayMetrics()
    {
        Meter = new Meter(MeterName);
        EnvelopesAccepted = Meter.CreateCounter<long>("relayd.envelopes.accepted", "{envelope}", "Envelopes accepted and stored for delivery (a resend answered from dedup is not counted again)");
        EnvelopesRefused = Meter.CreateCounter<long>("relayd.envelopes.refused", "{envelope}", "Envelopes refused, by the refusal's error code (tag code, the proto's name)");
        EnvelopesDelivered = Meter.CreateCounter<long>("relayd.envelopes.delivered", "{envelope}", "Envelopes the recipient partner acknowledged (DeliveryAck): delivered, their DELIVERED receipts due");
        AcksSent = Meter.CreateCounter<long>("relayd.acks.sent", "{ack}", "Acks sent to senders, each after its envelope was durable");
        SessionsActive = Meter.CreateUpDownCounter<long>("relayd.sessions.active", "{session}", "Partner sessions past Hello, open now");
        FramesReceived = Meter.CreateCounter<long>("relayd.frames.received", "{frame}", "Frames read from partner sessions and handled (after the Hello)");
        BytesReceived = Meter.CreateCounter<long>("relayd.bytes.received", "By", "Bytes read from partner connections' sockets (TLS records, handshakes included)");
        BytesSent = Meter.CreateCounter<long>("relayd.bytes.sent", "By", "Bytes written to partner connections' sockets (TLS records, handshakes included)");
        WalCommitDuration = Meter.CreateHistogram<double>("relayd.wal.commit.duration", "ms", "Time of one group commit of the write-ahead log: pwrite and fdatasync of a batch");
        WalBytes = Meter.CreateCounter<long>("relayd.wal.bytes", "By", "Bytes of records the write-ahead log committed");
        MediaBytes = Meter.CreateCounter<long>("relayd.media.bytes", "By", "Media bytes received from senders and written to the spool");
        Refusals = Meter.CreateCounter<long>("relayd.refusals", "{connection}", "Connections refused before or at admission, by kind (tag kind: tls_handshake, handshake_timeout, admission)");
    }

    public Meter Meter { get; }

    public Counter<long> EnvelopesAccepted { get; }

    /// <summary>Tagged with <see cref="CodeTag"/>.</summary>
    public Counter<long> EnvelopesRefused { get; }

    public Counter<long> EnvelopesDelivered { get; }

    public Counter<long> AcksSent { get; }

    public UpDownCounter<long> SessionsActive { get; }

    public Counter<long> FramesReceived { get; }

    public Counter<long> BytesReceived { get; }

    public Counter<long> BytesSent { get; }

    /// <summary>Milliseconds per commit.</summary>
    public Histogram<double> WalCommitDuration { get; }

    public Counter<long> WalBytes { get; }

    public Counter<long> MediaBytes { get; }

    /// <summary>Tagged with <see cref="KindTag"/>.</summary>
    public Counter<long> Refusals { get; }

    /// <summary>The <c>code</c> tag: the proto's name of <paramref name="code"/> (SENDER_MISMATCH), a cached string.</summary>
    public static KeyValuePair<string, object?> CodeTag(ErrorCode code) => new("code", ProtoNames.Of(code));

    /// <summary>The <c>kind</c> tag of <see cref="Refusals"/>; pass a constant (no new string per refusal).</summary>
    public static KeyValuePair<string, object?> KindTag(string kind) => new("kind", kind);

    public void Dispose() => Meter.Dispose();
}
