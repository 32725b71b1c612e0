namespace Relayd;

/// <summary>
/// The spam and rate limits (docs/protocol.md, "Rate limits"): token buckets per sender partner, per sender user, for
/// new conversations and for key-bundle requests. The per-partner keys here are the defaults a partner's own
/// (<see cref="PartnerOptions"/>) override; 0 turns a limit off. Not reloadable (the reloader takes tls.* and
/// partners[*] only): a partner's overrides are.
/// </summary>
public sealed partial class InteropOptions
{
    /// <summary>Largest rate a limit takes: past it a token costs under a nanosecond and the bucket cannot measure it.</summary>
    internal const long MaxRate = 1_000_000_000;

    private long _partnerEnvelopesPerSecond = 50_000;
    private long _partnerBytesPerSecond = 400L * 1024 * 1024;
    private long _userEnvelopesPerSecond = 20;
    private long _userEnvelopeBurst = 100;
    private long _newConversationsPerHour = 200;
    private long _keyBundleRequestsPerMinute = 60;
    private int _rateLimitTrackedUsers = 1 << 20;
    private int _seenPairsPerHour = 1 << 22;
    private long _tightenedUserEnvelopesPerSecond = 1;
    private TimeSpan _tightenDuration = TimeSpan.FromHours(24);
    private int _tightenAfterReports = 3;

    /// <summary>
    /// Whether the rate limits are checked at all; false takes the limiter out of the pipelines (what the benchmarks'
    /// "limits off" run compares against). Defaults to true.
    /// </summary>
    public bool RateLimits { get; set; } = true;

    /// <summary>
    /// Envelopes and MediaOpens per second one sender partner may send, all its users and connections together; the
    /// burst is one second's worth. 0 = unlimited. Defaults to 50,000: several times a large provider's cross-app
    /// peak, so only a runaway or abusive partner meets it.
    /// </summary>
    public long PartnerEnvelopesPerSecond
    {
        get => _partnerEnvelopesPerSecond;
        set => _partnerEnvelopesPerSecond = CheckRate(value, nameof(PartnerEnvelopesPerSecond));
    }

    /// <summary>
    /// Bytes per second one sender partner may send: envelope frames and the declared size of its MediaOpens; the
    /// burst is one second's worth (a blob larger than that passes when the bucket is full and puts it in debt).
    /// 0 = unlimited. Defaults to 400 MiB/s: 50,000 envelopes of 8 KiB, about three 10 GbE links' worth of media.
    /// </summary>
    public long PartnerBytesPerSecond
    {
        get => _partnerBytesPerSecond;
        set => _partnerBytesPerSecond = CheckRate(value, nameof(PartnerBytesPerSecond));
    }

    /// <summary>
    /// Envelopes and MediaOpens per second one sender user may send (sustained). 0 = unlimited. Defaults to 20: no
    /// person types or sends photos faster; a bot that does is what the limit is for.
    /// </summary>
    public long UserEnvelopesPerSecond
    {
        get => _userEnvelopesPerSecond;
        set => _userEnvelopesPerSecond = CheckRate(value, nameof(UserEnvelopesPerSecond));
    }

    /// <summary>
    /// Envelopes one sender user may send at once after being idle (the bucket's capacity), at least 1. Defaults to 100:
    /// forwarding an album or a queue flushed by a phone coming back online.
    /// </summary>
    public long UserEnvelopeBurst
    {
        get => _userEnvelopeBurst;
        set => _userEnvelopeBurst = CheckBurst(value, nameof(UserEnvelopeBurst));
    }

    /// <summary>
    /// First messages per hour from one sender user to recipient users it has not written to within the last one to
    /// two hours (the burst is the whole hour's worth). 0 = unlimited. Defaults to 200: far above what a person starts,
    /// well below what a spam run needs.
    /// </summary>
    public long NewConversationsPerHour
    {
        get => _newConversationsPerHour;
        set => _newConversationsPerHour = CheckRate(value, nameof(NewConversationsPerHour));
    }

    /// <summary>
    /// Key-bundle requests per minute one requester user may make (the burst is the minute's worth). 0 = unlimited.
    /// Defaults to 60: a user opening chats with many contacts at once, while scraping one-time prekeys stays slow.
    /// </summary>
    public long KeyBundleRequestsPerMinute
    {
        get => _keyBundleRequestsPerMinute;
        set => _keyBundleRequestsPerMinute = CheckRate(value, nameof(KeyBundleRequestsPerMinute));
    }

    /// <summary>
    /// Sender users whose buckets are kept (40 bytes each), 1,024 to 67,108,864 (a power of two is not required). A
    /// sender idle long enough that its buckets are full again is evicted first; beyond this many active senders the
    /// most idle lose their history and start again with full buckets (more lenient, never a false refusal).
    /// Defaults to 1,048,576 (40 MiB).
    /// </summary>
    public int RateLimitTrackedUsers
    {
        get => _rateLimitTrackedUsers;
        set => _rateLimitTrackedUsers = CheckRange(value, 1024, 1 << 26, nameof(RateLimitTrackedUsers));
    }

    /// <summary>
    /// (Sender user, recipient user) pairs per hour the "seen pairs" filters are sized for: 16 bits each in each of three
    /// Bloom filters (current hour, previous hour, one being cleared), 65,536 to 1,073,741,824. At or below it, about
    /// 0.1% of new pairs are taken as already seen (not counted as new conversations); never is a seen pair taken as
    /// new. Defaults to 4,194,304 (three 8 MiB filters).
    /// </summary>
    public int SeenPairsPerHour
    {
        get => _seenPairsPerHour;
        set => _seenPairsPerHour = CheckRange(value, 1 << 16, 1 << 30, nameof(SeenPairsPerHour));
    }

    /// <summary>
    /// Whether the abuse handling may tighten a sender user's rate (reports against it): the user then sends at most
    /// <see cref="TightenedUserEnvelopesPerSecond"/> for <see cref="TightenDuration"/>. Defaults to false.
    /// </summary>
    public bool TightenReportedSenders { get; set; }

    /// <summary>A tightened sender user's envelopes per second (and its burst), 1 to 1,000,000. Defaults to 1.</summary>
    public long TightenedUserEnvelopesPerSecond
    {
        get => _tightenedUserEnvelopesPerSecond;
        set => _tightenedUserEnvelopesPerSecond = CheckRange(value, 1, 1_000_000, nameof(TightenedUserEnvelopesPerSecond));
    }

    /// <summary>How long a tightening lasts, 1 second to 30 days. Defaults to 24 hours.</summary>
    public TimeSpan TightenDuration
    {
        get => _tightenDuration;
        set => _tightenDuration = value >= TimeSpan.FromSeconds(1) && value <= TimeSpan.FromDays(30)
            ? value
            : throw new ArgumentOutOfRangeException(nameof(TightenDuration), value, "must be between 1 s and 30 days");
    }

    /// <summary>
    /// Accepted abuse reports against one sender user, within <see cref="TightenDuration"/>, that tighten it (with
    /// <see cref="TightenReportedSenders"/> on), 1 to 1,000. One report is one user's word; several are a pattern.
    /// Defaults to 3.
    /// </summary>
    public int TightenAfterReports
    {
        get => _tightenAfterReports;
        set => _tightenAfterReports = CheckRange(value, 1, 1000, nameof(TightenAfterReports));
    }

    /// <summary>
    /// Every rate limit on, at rates no load generator reaches (10 M envelopes/s and 1 GB/s per partner, 10 M per user;
    /// new conversations and key bundles at their defaults): what <c>relayd dev --rate-limits bench</c> runs, so a
    /// benchmark pays for every bucket without measuring refusals. The load generator sends from one user per
    /// partner at 100,000+ envelopes/s, which the defaults (20 per user, 50,000 per partner) would cut.
    /// </summary>
    internal void UseBenchmarkRates()
    {
        RateLimits = true;
        PartnerEnvelopesPerSecond = 10_000_000;
        PartnerBytesPerSecond = MaxRate;
        UserEnvelopesPerSecond = 10_000_000;
        UserEnvelopeBurst = 10_000_000;

        // The load generator sends from one user per partner to --users recipients (up to a million): first contacts
        // are still counted and checked, at a rate no run reaches.
        NewConversationsPerHour = MaxRate;
    }

    internal static long CheckRate(long value, string name) => CheckRange(value, 0, MaxRate, name);

    internal static long CheckBurst(long value, string name) => CheckRange(value, 1, MaxRate, name);

    private static long CheckRange(long value, long min, long max, string name) =>
        value >= min && value <= max ? value : throw new ArgumentOutOfRangeException(name, value, $"must be between {min} and {max}");

    private static int CheckRange(int value, int min, int max, string name) =>
        value >= min && value <= max ? value : throw new ArgumentOutOfRangeException(name, value, $"must be between {min} and {max}");
}
