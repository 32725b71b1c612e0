using Relayd.Protocol.V1;

namespace Relayd.Support.Health;

/// <summary>
/// One partner's health counters: fixed rings of time buckets, allocated once when the partner is first seen, so
/// recording allocates nothing and memory does not grow with traffic (about 130 KB a partner).
/// </summary>
/// <remarks>
/// Per-second buckets for the last minute, per-minute buckets for the last hour, per-10-second latency histograms for
/// the last 5 minutes. A window is the current, partial bucket and the ones before it (the last minute is the
/// current second and the 59 before). Counters are per bucket and updated with Interlocked: the sessions of a
/// partner record on their own threads without a common lock.
/// </remarks>
internal sealed class PartnerHealth
{
    public const int SecondsInMinute = 60;
    public const int MinutesInHour = 60;
    public const int LatencyBuckets = 30;     // 30 x 10 s: the last 5 minutes
    public const long LatencyBucketMs = 10_000;

    // Counters of the per-second ring.
    private const int SecAccepted = 0;
    private const int SecRefused = 1; // .. + HealthCodes.Count

    // Counters of the per-minute ring.
    private const int MinAccepted = 0;
    private const int MinConnects = 1;
    private const int MinKeyBundleTimeoutsAsTarget = 2;
    private const int MinKeyBundleTimeoutsAsRequester = 3;
    private const int MinExpired = 4;
    private const int MinRefused = 5;

    private static readonly int MinMediaFailed = MinRefused + HealthCodes.Count;
    private static readonly int MinDisconnects = MinMediaFailed + HealthCodes.Count;

    private readonly CounterRing _seconds = new(SecondsInMinute, 1000, SecRefused + HealthCodes.Count);
    private readonly CounterRing _minutes = new(MinutesInHour, 60_000, MinDisconnects + ReasonTable.Count);
    private readonly LatencyRing _latency = new(LatencyBuckets, LatencyBucketMs);
    private readonly HashSet<long> _openSessions = [];
    private readonly Lock _sessionsLock = new();

    public void SessionOpened(long connectionId, long nowMs)
    {
        lock (_sessionsLock)
        {
            _openSessions.Add(connectionId);
        }

        _minutes.Add(nowMs, MinConnects);
    }

    /// <summary>A session ended; one that was never counted open (it failed its handshake) counts its reason all the same.</summary>
    public void SessionClosed(long connectionId, int reasonIndex, long nowMs)
    {
        lock (_sessionsLock)
        {
            _openSessions.Remove(connectionId);
        }

        _minutes.Add(nowMs, MinDisconnects + reasonIndex);
    }

    public int SessionsNow
    {
        get
        {
            lock (_sessionsLock)
            {
                return _openSessions.Count;
            }
        }
    }

    public void Accepted(long nowMs)
    {
        _seconds.Add(nowMs, SecAccepted);
        _minutes.Add(nowMs, MinAccepted);
    }

    public void Refused(ErrorCode code, long nowMs)
    {
        int index = HealthCodes.IndexOf(code);
        _seconds.Add(nowMs, SecRefused + index);
        _minutes.Add(nowMs, MinRefused + index);
    }

    public void Delivered(long latencyUs, long nowMs) => _latency.Record(nowMs, latencyUs);

    public void MediaFailed(ErrorCode code, long nowMs) => _minutes.Add(nowMs, MinMediaFailed + HealthCodes.IndexOf(code));

    public void KeyBundleTimedOutAsTarget(long nowMs) => _minutes.Add(nowMs, MinKeyBundleTimeoutsAsTarget);

    public void KeyBundleTimedOutAsRequester(long nowMs) => _minutes.Add(nowMs, MinKeyBundleTimeoutsAsRequester);

    public void Expired(long nowMs) => _minutes.Add(nowMs, MinExpired);

    /// <summary>The counters as of <paramref name="nowMs"/>; backlog and sessions are the caller's (read from the queues).</summary>
    public HealthCounters Read(long nowMs, ReasonTable reasons)
    {
        Span<long> codes = stackalloc long[HealthCodes.Count];
        _seconds.SumRange(nowMs, SecondsInMinute, SecRefused, codes);
        List<(ErrorCode, long)> refusedMinute = ByCode(codes);
        _minutes.SumRange(nowMs, MinutesInHour, MinRefused, codes);
        List<(ErrorCode, long)> refusedHour = ByCode(codes);
        _minutes.SumRange(nowMs, MinutesInHour, MinMediaFailed, codes);
        List<(ErrorCode, long)> mediaHour = ByCode(codes);
        Span<long> byReason = stackalloc long[ReasonTable.Count];
        _minutes.SumRange(nowMs, MinutesInHour, MinDisconnects, byReason);
        var disconnects = new List<(string, long)>();
        for (int i = 0; i < byReason.Length; i++)
        {
            if (byReason[i] != 0)
            {
                disconnects.Add((reasons.ReasonAt(i), byReason[i]));
            }
        }

        return new HealthCounters
        {
            ConnectsLastHour = _minutes.Sum(nowMs, MinutesInHour, MinConnects),
            DisconnectsLastHour = disconnects,
            AcceptedLastMinute = _seconds.Sum(nowMs, SecondsInMinute, SecAccepted),
            AcceptedLastHour = _minutes.Sum(nowMs, MinutesInHour, MinAccepted),
            RefusedLastMinute = refusedMinute,
            RefusedLastHour = refusedHour,
            Latency = _latency.Summarize(nowMs, LatencyBuckets),
            MediaFailuresLastHour = mediaHour,
            KeyBundleTimeoutsLastHour = _minutes.Sum(nowMs, MinutesInHour, MinKeyBundleTimeoutsAsTarget),
            KeyBundleRequestsTimedOutLastHour = _minutes.Sum(nowMs, MinutesInHour, MinKeyBundleTimeoutsAsRequester),
            ExpiredLastHour = _minutes.Sum(nowMs, MinutesInHour, MinExpired),
        };
    }

    private static List<(ErrorCode, long)> ByCode(ReadOnlySpan<long> counts)
    {
        var result = new List<(ErrorCode, long)>();
        for (int i = 0; i < counts.Length; i++)
        {
            if (counts[i] != 0)
            {
                result.Add((HealthCodes.CodeAt(i), counts[i]));
            }
        }

        return result;
    }
}

/// <summary>What <see cref="PartnerHealth.Read"/> sums up: counts per window, by code or reason where they have one (non-zero ones only).</summary>
internal sealed class HealthCounters
{
    public long ConnectsLastHour { get; init; }

    public IReadOnlyList<(string Reason, long Count)> DisconnectsLastHour { get; init; } = [];

    public long AcceptedLastMinute { get; init; }

    public long AcceptedLastHour { get; init; }

    public IReadOnlyList<(ErrorCode Code, long Count)> RefusedLastMinute { get; init; } = [];

    public IReadOnlyList<(ErrorCode Code, long Count)> RefusedLastHour { get; init; } = [];

    /// <summary>Accepted -> delivery ack of deliveries to the partner, the last 5 minutes.</summary>
    public LatencySummary Latency { get; init; }

    public IReadOnlyList<(ErrorCode Code, long Count)> MediaFailuresLastHour { get; init; } = [];

    /// <summary>Key-bundle requests to the partner that timed out (no session, or no answer in time).</summary>
    public long KeyBundleTimeoutsLastHour { get; init; }

    /// <summary>The partner's own key-bundle requests to others that timed out.</summary>
    public long KeyBundleRequestsTimedOutLastHour { get; init; }

    /// <summary>Envelopes to the partner that expired undelivered.</summary>
    public long ExpiredLastHour { get; init; }
}
