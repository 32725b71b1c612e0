using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Logging;
using Relayd.Delivery;
using Relayd.Diagnostics;
using Relayd.Interop.Consent;
using Relayd.Media;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Transport;

/// <summary>
/// What a <see cref="PartnerSession"/> may use of the relay: its limits and clock, where envelopes, receipts and media
/// go, the refusal log, and the registry of open sessions with the relay's shutting-down flag. Built once by the
/// composition root and shared by every session.
/// </summary>
internal sealed class SessionServices : Interop.ILiveSessions
{
    private readonly ConcurrentDictionary<long, PartnerSession> _sessions = new();
    private readonly ConcurrentDictionary<PartnerInfo, PartialFrameBudget> _partialFrames = new();
    private volatile bool _shuttingDown;
    private volatile bool _draining;

    public required RelayLimits Limits { get; init; }

    /// <summary>The relay's name, sent in Welcome.</summary>
    public required string RelayId { get; init; }

    public required ILogger Logger { get; init; }

    public required TimeProvider Clock { get; init; }

    /// <summary>The relay's counters and histograms.</summary>
    public required RelayMetrics Metrics { get; init; }

    public required EnvelopeRouter Router { get; init; }

    /// <summary>The write-ahead log: when Acks may go out (commits), and room to append.</summary>
    public required IEnvelopeStore Store { get; init; }

    public required ReceiptDispatcher Receipts { get; init; }

    public required MediaRouter Media { get; init; }

    /// <summary>Where every refusal is counted before it is logged, so that a flood of them costs a few lines.</summary>
    public required RefusalAggregator Refusals { get; init; }

    /// <summary>The interop rules' state (opt-in, rate limits) for the pipelines of the frames sessions route themselves.</summary>
    public Admission.InteropPolicy Interop { get; init; } = Admission.InteropPolicy.None;

    /// <summary>Where ConsentUpdates go (durable opt-in); null: the relay carries none (UNEXPECTED_FRAME).</summary>
    public ConsentStore? Consent { get; init; }
    /// <summary>Key-bundle requests and answers, routed live between sessions.</summary>
    public required Interop.KeyBundles.KeyBundleExchange KeyBundles { get; init; }

    /// <summary>Typing notices, handed to a connected session of the recipient partner.</summary>
    public required Interop.Typing.TypingRelay Typing { get; init; }

    /// <summary>What each partner takes, for CapabilitiesRequest.</summary>
    public required Interop.Capabilities.CapabilitiesDirectory Capabilities { get; init; }

    /// <summary>The approved partners (abuse reports name the reported one).</summary>
    public required PartnerDirectory Partners { get; init; }

    /// <summary>Abuse reports and notices; null: not carried (UNEXPECTED_FRAME).</summary>
    public Interop.Abuse.AbuseReportStore? Abuse { get; init; }

    /// <summary>Read receipts to senders; null: not carried (UNEXPECTED_FRAME).</summary>
    public Interop.ReadReceipts.ReadReceiptRelay? ReadReceipts { get; init; }

    /// <summary>Where the data path reports each step of a message (trace, partner health, evidence).</summary>
    public Routing.SupportEvents Support { get; init; } = Relayd.Routing.SupportEvents.None;

    /// <summary>Partner health, for HealthRequest; null: off (UNEXPECTED_FRAME).</summary>
    public Support.Health.PartnerHealthRecorder? Health { get; init; }

    /// <summary>Per-message trace, for TraceRequest; null: off (UNEXPECTED_FRAME).</summary>
    public Support.Trace.TraceRecorder? Trace { get; init; }
    /// <summary>Signed delivery evidence, for EvidenceRequest and Welcome.evidence_public_key; null: off (UNEXPECTED_FRAME).</summary>
    public Support.Evidence.EvidenceStore? Evidence { get; init; }

    /// <summary>
    /// A session of <paramref name="partner"/> past its Welcome, for a frame routed live (key bundles, typing); null
    /// when it has none. Sessions are few (tens): a scan is cheaper than keeping a second index in step.
    /// </summary>
    public PartnerSession? AnySessionOf(Routing.PartnerInfo partner)
    {
        PartnerSession? found = null;
        foreach (PartnerSession session in _sessions.Values)
        {
            if (ReferenceEquals(session.Partner, partner) && !session.IsClosing)
            {
                // The lowest connection id: stable while it lives, so frames of one conversation keep their order.
                if (found is null || session.ConnectionId < found.ConnectionId)
                {
                    found = session;
                }
            }
        }

        return found;
    }

    Interop.ILiveSession? Interop.ILiveSessions.AnyLiveSessionOf(PartnerInfo partner) => AnySessionOf(partner);

    /// <summary>Set once the relay stops: new envelopes are refused with SHUTTING_DOWN.</summary>
    public bool IsShuttingDown => _shuttingDown;

    /// <summary>The sessions past their Welcome.</summary>
    public IReadOnlyCollection<PartnerSession> Sessions => (IReadOnlyCollection<PartnerSession>)_sessions.Values;

    public int SessionCount => _sessions.Count;

    /// <summary>Marks the relay as shutting down; false when it already was.</summary>
    public bool BeginShutdown()
    {
        if (_shuttingDown)
        {
            return false;
        }

        _shuttingDown = true;
        Interlocked.MemoryBarrier(); // the flag before the caller reads the sessions (PartnerSession checks after registering)
        return true;
    }

    /// <summary>
    /// The bytes <paramref name="partner"/> holds in partially received frames, across its connections: transport
    /// state of a partner, kept here by reference so that the partner table carries nothing of the transport's.
    /// </summary>
    public PartialFrameBudget PartialFramesOf(PartnerInfo partner) => _partialFrames.GetOrAdd(partner, static _ => new PartialFrameBudget());

    public void Register(PartnerSession session) => _sessions[session.ConnectionId] = session;

    public void Unregister(PartnerSession session) => _sessions.TryRemove(session.ConnectionId, out _);

    /// <summary>Set by <c>relayd ctl drain</c> (lame duck): new sessions and new envelopes are refused with DRAINING; deliveries go on.</summary>
    public bool IsDraining => _draining;

    /// <summary>Starts draining; false when the relay already was. One-way: only a restart ends it.</summary>
    public bool BeginDrain()
    {
        if (_draining)
        {
            return false;
        }

        _draining = true;
        return true;
    }

    /// <summary>Logs an admission refusal in full, or counts it into the summary of its kind.</summary>
    public void LogRefusal(long id, EndPoint? remote, ErrorCode code, string reason)
    {
        if (Refusals.ShouldLog(RefusalKind.Admission, remote, $"{Protocol.ProtoNames.Of(code)}: {reason}", Environment.TickCount64))
        {
            RelayLog.PartnerRefused(Logger, id, remote, code, reason);
        }
    }
}
