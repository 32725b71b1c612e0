using System.Diagnostics.Metrics;
using System.Net;
using System.Runtime;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Relayd.Delivery;
using Relayd.Diagnostics;
using Relayd.Diagnostics.Prometheus;
using Relayd.Interop.Consent;
using Relayd.Media;
using Relayd.Routing;
using Relayd.Security;
using Relayd.Storage;
using Relayd.Storage.WalStore;
using Relayd.Support.Evidence;
using Relayd.Transport;

namespace Relayd;

/// <summary>
/// The relay, composed: the one place that builds the store, the envelope router, receipt dispatch, storage
/// maintenance, the media router and the partner listener, and wires them together. The constructor only keeps its
/// arguments; <see cref="Open"/> (or <see cref="StartAsync"/>) recovers the store and binds the port.
/// </summary>
/// <remarks>
/// Start: open the write-ahead log and recover it (every envelope acknowledged before a crash back in its queue,
/// those that expired meanwhile settled), compact the memory recovery used, recover the media spool, bind the listen
/// socket; then accept, heartbeat and maintenance. Stop: the listener's GoAway and drain, then maintenance, the
/// storage summary and the store.
/// </remarks>
internal sealed partial class Relay : IAsyncDisposable, IRelayProbe
{
    private readonly RelayOptions _options;
    private readonly IPEndPoint _endpoint;
    private readonly X509Certificate2 _serverCertificate;
    private readonly PartnerCertificateValidator _validator;
    private readonly ILogger _logger;
    private readonly TimeProvider _clock;
    private readonly RefusalAggregator _refusals;
    private readonly CancellationTokenSource _stopping = new();
    private WalEnvelopeStore? _store; // the one place that knows which store it is
    private ConsentStore? _consent;
    private InteropRecordLog? _interopLog;
    private Interop.ReadReceipts.ReadReceiptRelay? _readReceipts;
    private QueueMaintenance? _maintenance;
    private MediaRouter? _media;
    private Interop.KeyBundles.KeyBundleExchange? _keyBundles;

    /// <summary>Partner health (<c>relayd ctl health</c>, HealthRequest); null when [health] is off or before <see cref="Open"/>.</summary>
    internal Support.Health.PartnerHealthRecorder? Health { get; private set; }

    /// <summary>The key-bundle routes' state (pending requests, late answers), for tests and diagnostics.</summary>
    internal Interop.KeyBundles.KeyBundleExchange? KeyBundles => _keyBundles;

    /// <summary>The typing route's counters (delivered, dropped), for tests and diagnostics.</summary>
    internal Interop.Typing.TypingRelay? Typing => _services?.Typing;
    private SessionServices? _services;
    private PartnerListener? _listener;
    private PrometheusExporter? _exporter;
    private MetricsEndpoint? _metricsEndpoint;
    private Task _maintenanceLoop = Task.CompletedTask;
    private bool _opened;
    private bool _started;
    private bool _stopRequested;
    private bool _storeClosed;

    public Relay(RelayOptions options, IPEndPoint endpoint, X509Certificate2 serverCertificate, PartnerCertificateValidator validator, ILogger logger, TimeProvider? clock = null)
    {
        _options = options;
        _endpoint = endpoint;
        _serverCertificate = serverCertificate;
        _validator = validator;
        _logger = logger;
        _clock = clock ?? TimeProvider.System;
        Partners = new PartnerDirectory(options);
        Metrics = new RelayMetrics();
        _refusals = new RefusalAggregator(options.Limits.RefusalLogInterval, logger, Metrics);
    }

    /// <summary>This relay's counters and histograms (its own <see cref="RelayMetrics.Meter"/>).</summary>
    public RelayMetrics Metrics { get; }

    public PartnerDirectory Partners { get; }

    /// <summary>The interop rules' state every admission pipeline consults (set by <see cref="Open"/>).</summary>
    internal Admission.InteropPolicy Interop { get; private set; } = Admission.InteropPolicy.None;

    /// <summary>Abuse reports kept for the admin and notices held for reported partners (set by <see cref="Open"/>).</summary>
    internal Interop.Abuse.AbuseReportStore? Abuse { get; private set; }

    /// <summary>Bytes of unfinished frames the connections of <paramref name="partner"/> hold now (the max_partial_frame_bytes_per_partner budget).</summary>
    public long PartialFrameBytes(PartnerInfo partner) => _services?.PartialFramesOf(partner).Held ?? 0;

    /// <summary>Called about once a second while <see cref="Open"/> replays the log (set before Open): the systemd STATUS line.</summary>
    public Action<RecoveryProgress>? RecoveryProgressed { get; set; }

    /// <summary>
    /// Whether the relay is making progress, for the systemd watchdog: the accept loop runs and the store's commit in
    /// progress (if any) has run less than <paramref name="commitDeadline"/>. Null when it is; else what is stuck.
    /// </summary>
    public string? Stuck(TimeSpan commitDeadline)
    {
        if (_listener is null || _store is null)
        {
            return "not started";
        }

        if (!_listener.IsAccepting)
        {
            return "the accept loop has ended";
        }

        TimeSpan commit = _store.CommitInProgressFor;
        return commit == TimeSpan.MaxValue ? "the write-ahead log's writer has stopped"
            : commit > commitDeadline ? $"a write-ahead log commit has run for {commit.TotalSeconds:F1} s"
            : null;
    }

    /// <summary>
    /// Applies a reloaded configuration that passed every check: the server certificate and partner trust for new
    /// connections, then the approved partners and their settings. Sessions of partners no longer approved get GoAway
    /// (PARTNER_NOT_APPROVED); everyone else's sessions stay up. Returns what changed, for the log.
    /// </summary>
    public string ApplyReload(RelayOptions reloaded, X509Certificate2 serverCertificate, PartnerCertificateValidator validator, bool tlsChanged)
    {
        PartnerListener listener = _listener ?? throw new InvalidOperationException("not started");
        if (tlsChanged)
        {
            listener.ReplaceTls(serverCertificate, validator);
        }

        PartnerChanges changes = Partners.Replace(reloaded);
        foreach (PartnerInfo removed in changes.Removed)
        {
            listener.GoAway(removed, Protocol.V1.ErrorCode.PartnerNotApproved, $"partner '{removed.Id}' is no longer approved on this relay (configuration reloaded)");
        }

        return tlsChanged ? $"{changes}; certificate and partner trust reloaded" : changes.ToString();
    }

    /// <summary>Where accepted envelopes are kept until settled (the write-ahead log).</summary>
    public IEnvelopeStore Store => _store ?? throw new InvalidOperationException("the relay is not open (Open or StartAsync first)");

    public StorageMetrics StorageMetrics => Store.CaptureMetrics(MailboxBacklog.Capture(Partners));

    /// <summary>Where the relay listens (the real port when 0 was configured).</summary>
    public IPEndPoint LocalEndPoint => _listener?.LocalEndPoint ?? throw new InvalidOperationException("not started");

    /// <summary>Where the metrics endpoint listens (the real port when 0 was configured).</summary>
    public IPEndPoint MetricsEndPoint => _metricsEndpoint?.LocalEndPoint ?? throw new InvalidOperationException("no metrics endpoint ([metrics] listen)");

    /// <summary>The sessions past their Welcome.</summary>
    public IReadOnlyCollection<PartnerSession> Sessions => _services?.Sessions ?? [];

    /// <summary>
    /// Does everything that can refuse a start, in this order: opens and recovers the write-ahead log, recovers the
    /// media spool, binds the listen socket. Nothing is accepted until <see cref="StartAsync"/>.
    /// </summary>
    /// <exception cref="System.Net.Sockets.SocketException">The listen port is in use or cannot be bound.</exception>
    /// <exception cref="IOException">The write-ahead log cannot be opened (e.g. another relay has it).</exception>
    public void Open()
    {
        if (_opened)
        {
            return;
        }

        _opened = true;
        EvidenceKey? evidenceKey = LoadEvidenceKey(); // a key the relay may not use refuses the start before anything opens

        // Recovery runs before the relay listens: every envelope acknowledged before a crash is back in its queue.
        WalEnvelopeStore store = WalEnvelopeStore.Open(_options.Storage, _logger, Metrics);
        _store = store;
        ReceiptDispatcher receipts;
        try
        {
            receipts = new ReceiptDispatcher(store, _logger);
            OpenTrace(); // before recovery: the trace derives from the log what the last process lost
            IRecoveredEnvelopes[] observers = [.. new IRecoveredEnvelopes?[] { Trace, OpenEvidence(evidenceKey) }.OfType<IRecoveredEnvelopes>()];
            var recovery = new QueueRecovery(Partners, store, _logger, RecoveryProgressed, observers);
            recovery.Run(_clock.GetUtcNow().ToUnixTimeMilliseconds());
            Trace?.LogOpened();
            receipts.Settle(recovery.Expired);

            // Replaying a large log allocates a buffer per record; give that memory back before serving.
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
        catch
        {
            _store = null;
            store.Dispose();
            CloseTrace();
            throw;
        }

        // Who opted in, back from its own log and snapshot before anything is admitted.
        ConsentStore consent;
        try
        {
            consent = ConsentStore.Open(_options.Storage.ToWalOptions(), _options.Interop, Partners, _logger);
        }
        catch
        {
            _store = null;
            store.Dispose();
            throw;
        }

        _consent = consent;

        OpenInteropLog();

        // The interop rules' state: who opted in, the rate limits (docs/protocol.md, "Interop").
        Interop = new Admission.InteropPolicy(consent.Table, _options.Interop.RateLimits ? new global::Relayd.Interop.RateLimits.RateLimiter(_options.Interop, _clock, _logger) : Admission.NoRateLimits.Instance);
        Interop = Interop with { Kinds = Admission.RelayKindPolicy.Of(_options.Interop.Kinds) };
        Routing.SupportEvents support = BuildSupportEvents(evidenceKey);
        receipts.ReportTo(support, _clock);
        var router = new EnvelopeRouter(Partners, store, _options.Limits, _clock, Interop, support);
        _maintenance = new QueueMaintenance(store, Partners, receipts, _options.Storage.RetentionInterval, _clock, _logger, Interop.Consent, support);
        _media = new MediaRouter(_options.Media, Partners, _options.Limits, new MediaSpool(_options.Media.SpoolDirectory), _logger, _clock, Metrics, Interop, support);
        _media.Start();
        _services = new SessionServices
        {
            Limits = _options.Limits,
            RelayId = _options.RelayId,
            Logger = _logger,
            Clock = _clock,
            Metrics = Metrics,
            Router = router,
            Store = store,
            Receipts = receipts,
            Media = _media,
            Refusals = _refusals,
            Interop = Interop,
            Consent = consent,
            KeyBundles = _keyBundles = new Interop.KeyBundles.KeyBundleExchange(Partners, Interop, _options.Interop, _clock, support),
            Typing = new Interop.Typing.TypingRelay(Partners, Interop, _clock),
            Capabilities = new Interop.Capabilities.CapabilitiesDirectory(Partners, Interop.Kinds),
            Partners = Partners,
            Abuse = Abuse,
            ReadReceipts = _readReceipts,
            Support = support,
            Health = Health,
            Trace = Trace,
            Evidence = Evidence,
        };
        SessionServices services = _services;
        Func<PartnerInfo, Protocol.V1.Frame, bool> sendLive = (partner, frame) => services.AnySessionOf(partner)?.TryEnqueueFrame(frame) ?? false;
        Abuse!.SendLive = sendLive;
        Abuse.Support = support;
        TightenReportedSenders(Abuse);
        _readReceipts!.SendLive = sendLive;
        _listener = new PartnerListener(_services, Partners, _serverCertificate, _validator);
        ObserveState(store, _media);
        if (_options.Metrics.Enabled)
        {
            // After recovery, before the partner port: /readyz says 503 until the accept loop runs.
            _exporter = new PrometheusExporter(Metrics.Meter);
            _metricsEndpoint = new MetricsEndpoint(_exporter, this, _logger);
            _metricsEndpoint.Start(ListenAddress.Parse(_options.Metrics.Listen));
        }

        _listener.Listen(_endpoint);
    }

    string? IRelayProbe.HealthProblem() =>
        _store is not { } store || _storeClosed ? "the write-ahead log is closed: the relay is stopping"
        : store.Failure is { } failure ? $"the write-ahead log failed ({failure.Message}): nothing more is accepted; restart to recover"
        : store.IsFull ? "the write-ahead log's disk is below wal.reserve_bytes: envelopes are refused with STORAGE_FULL until space returns"
        : null;

    string? IRelayProbe.NotReadyReason() =>
        _stopRequested || _services is { IsShuttingDown: true } ? "draining: the relay is stopping and accepts no new sessions or envelopes"
        : !_started ? "starting: the partner listener does not accept yet"
        : _listener is not { IsAccepting: true } ? "the partner listener's accept loop has ended"
        : null;

    /// <summary>Points the metrics' gauges at the state they read at collection time: backlog, media, log size.</summary>
    private void ObserveState(WalEnvelopeStore store, MediaRouter media)
    {
        KeyValuePair<string, object?> inMemory = new("held", "memory");
        KeyValuePair<string, object?> inLogOnly = new("held", "log_only");
        Metrics.ObserveBacklog(() => MailboxBacklog.Capture(Partners).SelectMany(b => (Measurement<long>[])
            [new(b.InMemory, RelayMetrics.PartnerTag(b.Partner), inMemory), new(b.InLogOnly, RelayMetrics.PartnerTag(b.Partner), inLogOnly)]));
        Metrics.ObserveMedia(
            () => media.CaptureUsage().Select(u => new Measurement<long>(u.OpenTransfers, RelayMetrics.PartnerTag(u.Partner))),
            () => media.CaptureUsage().Select(u => new Measurement<long>(u.SpoolBytes, RelayMetrics.PartnerTag(u.Partner))));
        Metrics.ObserveLog(() => _storeClosed ? 0 : store.CaptureMetrics([]).LogBytes);
    }

    /// <summary>
    /// Opens the relay (<see cref="Open"/>) unless that was done, then serves: the accept loop, the heartbeat and storage
    /// maintenance.
    /// </summary>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        Open();
        if (!_started)
        {
            _started = true;
            _listener!.Start();
            _maintenanceLoop = _maintenance!.RunAsync(_stopping.Token);
        }

        return Task.CompletedTask;
    }

    /// <summary>Graceful stop: GoAway to every session, then up to <see cref="RelayLimits.ShutdownTimeout"/> for them to finish.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopRequested)
        {
            return;
        }

        _stopRequested = true;
        if (_listener is not { IsListening: true })
        {
            _services?.BeginShutdown();
            await StopMetricsEndpointAsync();
            await CloseEvidenceAsync();
            CloseStore(); // never listened (the start was refused): nothing to drain, nothing to report
            return;
        }

        int remaining = await _listener.StopAsync(cancellationToken);
        await _stopping.CancelAsync();
        await _maintenanceLoop;
        _refusals.Flush(Environment.TickCount64 + (long)_options.Limits.RefusalLogInterval.TotalMilliseconds);
        StorageLog.Summary(_logger, StorageMetrics.ToString());
        await StopMetricsEndpointAsync(); // it answered /readyz with 503 while the sessions drained
        await CloseEvidenceAsync();
        CloseStore();
        RelayLog.Stopped(_logger, remaining);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await CloseEvidenceAsync();
        CloseStore(); // also when the relay never started
        _media?.Dispose();
        _keyBundles?.Dispose();
        _listener?.Dispose();
        await StopMetricsEndpointAsync();
        _exporter?.Dispose();
        Metrics.Dispose();
        _stopping.Dispose();
    }

    private ValueTask StopMetricsEndpointAsync() => _metricsEndpoint?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>True once <see cref="Drain"/> was called: new sessions and envelopes are refused with DRAINING.</summary>
    public bool IsDraining => _services?.IsDraining ?? false;

    /// <summary>Lame duck (<c>relayd ctl drain</c>): refuses new sessions and envelopes, keeps delivering. False when already draining.</summary>
    public bool Drain() => _services is { } services ? services.BeginDrain() : throw new InvalidOperationException("the relay is not open");

    /// <summary>
    /// Suspends <paramref name="partner"/> (<c>relayd ctl suspend</c>): GoAway PARTNER_SUSPENDED to its sessions (aborted
    /// after shutdown_timeout_ms if they stay); the admission rules refuse what comes from it or goes to it. Returns how
    /// many sessions were told.
    /// </summary>
    public int Suspend(PartnerInfo partner)
    {
        PartnerListener listener = _listener ?? throw new InvalidOperationException("not started");
        partner.Suspend();
        return listener.GoAway(partner, Protocol.V1.ErrorCode.PartnerSuspended, $"partner '{partner.Id}' is suspended on this relay by its operator");
    }

    private void CloseStore()
    {
        if (!_storeClosed && _store is not null)
        {
            _storeClosed = true;
            _store.Dispose();
            _consent?.Dispose();
            _interopLog?.Dispose();
            CloseTrace();
        }
    }

    /// <summary>
    /// Opens the interop log (<c>&lt;wal.dir&gt;/interop/</c>: abuse reports, held READ receipts) and replays it. After
    /// the envelope store's recovery: the dedup indexes that reports are checked against are back by then.
    /// </summary>
    /// <summary>
    /// With <c>[interop] tighten_reported_senders</c>, a sender user reported <c>tighten_after_reports</c> times within
    /// <c>tighten_seconds</c> is held to the tightened rate (the rate limiter's <c>TightenSender</c>).
    /// </summary>
    private readonly List<Routing.ISupportEvents> _addedSupportConsumers = [];

    /// <summary>Adds a consumer of the support events before the relay opens (tests record what the data path reports).</summary>
    internal void AddSupportConsumer(Routing.ISupportEvents consumer) => _addedSupportConsumers.Add(consumer);

    /// <summary>The shared-support consumers of each message's steps: trace, partner health, evidence (issue 14).</summary>
    private Routing.SupportEvents BuildSupportEvents(EvidenceKey? evidenceKey)
    {
        var consumers = new List<Routing.ISupportEvents>();
        if (_options.Health.Enabled)
        {
            Health = new Support.Health.PartnerHealthRecorder(_clock);
            consumers.Add(Health);
        }

        if (Trace is not null)
        {
            consumers.Add(Trace);
        }

        AddEvidence(consumers, evidenceKey);

        consumers.AddRange(_addedSupportConsumers);
        return consumers.Count == 0 ? Routing.SupportEvents.None : new Routing.SupportEvents([.. consumers]);
    }

    private void TightenReportedSenders(Interop.Abuse.AbuseReportStore abuse)
    {
        InteropOptions options = _options.Interop;
        if (!options.TightenReportedSenders || Interop.RateLimits is not global::Relayd.Interop.RateLimits.RateLimiter limiter)
        {
            return;
        }

        abuse.ReportAccepted += (partner, user) =>
        {
            if (abuse.ReportsAgainst(partner.Id, user.Span, options.TightenDuration) >= options.TightenAfterReports)
            {
                limiter.TightenSender(partner, user.Span);
            }
        };
    }

    private void OpenInteropLog()
    {
        InteropRecordLog log = InteropRecordLog.Open(_options.Storage, _logger);
        _interopLog = log;
        Abuse = new Interop.Abuse.AbuseReportStore(log, _clock, _logger);
        _readReceipts = new Interop.ReadReceipts.ReadReceiptRelay(Partners, log, _clock, _logger);
        int records = 0;
        foreach ((byte type, ReadOnlyMemory<byte> payload) in log.ReadAll())
        {
            records++;
            if (!Abuse.Replay(type, payload) && !_readReceipts.Replay(type, payload))
            {
                throw new InvalidDataException($"the interop log in {Path.Combine(_options.Storage.Directory, InteropRecordLog.DirectoryName)} holds a record of type {type} this relay does not know (written by a newer relay?)");
            }
        }

        Abuse.OnReplayed();
        InteropLog.InteropRecovered(_logger, records, Path.Combine(_options.Storage.Directory, InteropRecordLog.DirectoryName));
    }

}
