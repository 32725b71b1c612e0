namespace Relayd.Diagnostics;

/// <summary>
/// The one place event ids are assigned: every <c>[LoggerMessage]</c> of relayd takes its id from here, under a
/// constant named like the event (its method name, or its <c>EventName</c>). Ids never change once shipped: operators
/// filter the journal by them. <c>EventIdTests</c> fails when two events share an id or a name, or an event's id is
/// not here under its name.
/// </summary>
/// <remarks>
/// Ranges: 1xx lifecycle, 2xx admission (TLS, partner) and refusal summaries, 3xx sessions (35x Hello), 4xx routing and
/// receipts, 5xx write-ahead log (50x open, 51x segments, 52x failures, 53x repair), 6xx media, 7xx durable state, 8xx
/// operations (80x systemd and reload, 82x-84x control socket, 85x-86x metrics endpoint, 87x journald).
/// A new event takes the next free id of its range and is added here in id order.
/// </remarks>
internal static class EventIds
{
    // 1xx lifecycle (RelayLog)
    public const int Listening = 100;
    public const int ShuttingDown = 101;
    public const int Stopped = 102;
    public const int AcceptFailed = 103;
    public const int ConfigWarning = 110;

    // 2xx admission and refusal summaries (RelayLog)
    public const int TlsRefused = 200;
    public const int HandshakeTimedOut = 201;
    public const int PartnerRefused = 202;
    public const int RefusalsSummarized = 210;
    public const int UntrackedRefusalsSummarized = 211;

    // 3xx sessions, 35x Hello (RelayLog)
    public const int SessionOpened = 300;
    public const int SessionClosed = 301;
    public const int ProtocolViolation = 302;
    public const int IdleClosed = 303;
    public const int WriteFailed = 304;
    public const int WriteStalled = 320;
    public const int PartialFrameRefused = 321;
    public const int HelloTimedOut = 350;

    // 4xx routing and receipts (RelayLog)
    public const int EnvelopeRefused = 400;
    public const int ReceiptsDropped = 401;
    public const int EnvelopeRefusalsSummarized = 402;
    public const int ReceiptsReturned = 403;

    // 5xx write-ahead log (WalLog)
    public const int Opened = 500;
    public const int TornTailTruncated = 501;
    public const int StaleTemporaryDeleted = 502;
    public const int SpareSegmentDeleted = 503;
    public const int SegmentCreated = 510;
    public const int SegmentCreationFailed = 511;
    public const int SegmentsDeleted = 512;
    public const int WalFailed = 520;
    public const int HandlerFailed = 521;
    public const int RepairNothingToDo = 530;
    public const int RepairTruncating = 531;
    public const int RepairQuarantinedTail = 532;
    public const int RepairQuarantinedSegment = 533;
    public const int RepairDone = 534;

    // 6xx media (RelayLog)
    public const int MediaOpened = 600;
    public const int MediaSpooled = 601;
    public const int MediaDelivered = 602;
    public const int MediaResumed = 603;
    public const int MediaRefused = 604;
    public const int MediaDigestMismatch = 605;
    public const int MediaIdleTimeout = 606;
    public const int MediaExpired = 607;
    public const int MediaSpoolFailed = 608;
    public const int MediaSpoolDiscarded = 609;
    public const int MediaRecovered = 610;
    public const int MediaRecipientStalled = 611;

    // 7xx durable state (StorageLog)
    public const int Recovered = 700;
    public const int RecipientGone = 701;
    public const int SyncDisabled = 702;
    public const int StorageFull = 703;
    public const int StorageAvailable = 704;
    public const int LogFailed = 705;
    public const int Expired = 706;
    public const int MaintenanceFailed = 707;
    public const int DedupSnapshotWritten = 708;
    public const int Summary = 709;
    public const int ReceiptsHeld = 710;

    // 80x systemd and reload (OperationsLog)
    public const int ReloadApplied = 800;
    public const int ReloadRefused = 801;
    public const int ReloadProblem = 802;
    public const int PartnerRetired = 803;
    public const int WatchdogEnabled = 805;
    public const int WatchdogWithheld = 806;
    public const int WatchdogResumed = 807;

    // 82x-84x control socket (ControlLog)
    public const int ControlListening = 820;
    public const int ControlUnavailable = 821;
    public const int ControlPeerRefused = 822;
    public const int ControlPartnerSuspended = 823;
    public const int ControlPartnerResumed = 824;
    public const int ControlDrainStarted = 825;
    public const int ControlReloadRequested = 826;
    public const int ControlRequestFailed = 827;
    public const int ControlGroupUnknown = 828;

    // 85x metrics endpoint (RelayLog, Diagnostics/Prometheus)
    public const int MetricsListening = 850;
    public const int MetricsRequestRefused = 851;
    public const int MetricsRequestTimedOut = 852;
    public const int MetricsTooManyConnections = 853;
    public const int MetricsAcceptFailed = 854;
    public const int MetricsStopped = 855;

    // 90x opt-in: consent store and ConsentUpdate (ConsentLog)
    public const int ConsentOpened = 900;
    public const int ConsentUpdateRefused = 901;
    public const int ConsentAnswerDropped = 902;
    public const int ConsentSnapshotWritten = 903;
    public const int ConsentSnapshotFailed = 904;
    public const int ConsentLogFailed = 905;
    public const int ConsentQueuedRefused = 906;
    // 91x live interop routes: key bundles, capabilities, typing (RelayLog.Live)
    public const int LiveFrameRefused = 910;
    // 92x rate limits (RateLimitLog)
    public const int SenderTightened = 920;

    // 930-949 interop: abuse reports and read receipts (InteropLog)
    public const int AbuseReportAccepted = 930;
    public const int AbuseReportRefused = 931;
    public const int AbuseNoticesHeld = 932;
    public const int ReadReceiptDropped = 933;
    public const int InteropLogFailed = 934;
    public const int InteropRecovered = 935;

    // 98x per-message trace (TraceLog)
    public const int TraceOpened = 980;
    public const int TraceWriteFailed = 981;
    public const int TraceQueryFailed = 982;
    public const int TraceUnavailable = 983;
    // 970-979 shared support: signed delivery evidence (EvidenceLog)
    public const int EvidenceOpened = 970;
    public const int EvidenceTreeClosed = 971;
    public const int EvidenceWriteFailed = 972;
    public const int EvidenceTreesDeleted = 973;
    public const int EvidenceStatementsDropped = 974;
}
