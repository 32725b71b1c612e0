using System.Buffers;
using System.IO.Hashing;
using Microsoft.Extensions.Logging;
using Relayd.Admission;
using Relayd.Diagnostics;
using Relayd.Protocol.V1;

namespace Relayd.Interop.RateLimits;

/// <summary>
/// The spam and rate limits (docs/protocol.md, "Rate limits"), as token buckets: per sender partner, envelopes and
/// bytes per second; per sender user (its partner and a 64-bit hash of its id), envelopes per second, new
/// conversations per hour (a first message to a recipient user not written to within the last one to two hours,
/// <see cref="SeenPairs"/>) and key-bundle requests per minute. An envelope and a MediaOpen count as one message and
/// their bytes (a MediaOpen its declared total_size); a key-bundle request counts only against its requester's
/// key-bundle bucket; typing notices are not limited (ephemeral, never stored, dropped after 10 s: nothing to protect
/// but the frame limits that already apply). Every bucket a request counts against is checked before any is taken,
/// so a refused request takes nothing.
///
/// Hand-written rather than System.Threading.RateLimiting: its limiters allocate a lease per acquire and its
/// partitioned limiter keeps one object per key, with no bound on keys; here admitting allocates nothing, a partner's
/// buckets are two CASed longs, and the users' live in one fixed table (<see cref="SenderTable"/>, 40 bytes each) under
/// striped locks: no lock shared by all sessions. Memory: <see cref="InteropOptions.RateLimitTrackedUsers"/> × 40 B
/// plus the seen-pairs filters (3 × <see cref="InteropOptions.SeenPairsPerHour"/> × 2 B); 40 + 24 MiB at the defaults.
/// </summary>
internal sealed class RateLimiter : IRateLimiter
{

    private readonly TimeProvider _clock;
    private readonly long _start;
    private readonly SenderTable _senders;
    private readonly SeenPairs _pairs;
    private readonly PartnerSlotTable<PartnerBuckets> _partners = new();
    private readonly bool _tighten;
    private readonly long _tightenedRate;
    private readonly long _tightenedCostNs;
    private readonly long _tightenNs;
    private readonly ILogger? _logger;

    public RateLimiter(InteropOptions options, TimeProvider clock, ILogger? logger = null)
    {
        _clock = clock;
        _start = clock.GetTimestamp();
        _senders = new SenderTable(options.RateLimitTrackedUsers);
        _pairs = new SeenPairs(options.SeenPairsPerHour);
        _tighten = options.TightenReportedSenders;
        _tightenedRate = options.TightenedUserEnvelopesPerSecond;
        _tightenedCostNs = _tightenedRate > 0 ? TokenBucket.CostNs(1, _tightenedRate, TokenBucket.NsPerSecond) : 0;
        _tightenNs = options.TightenDuration.Ticks * 100;
        _logger = logger;
    }

    /// <summary>The sender users' table (its bound and use, for tests and the docs' figures).</summary>
    internal SenderTable Senders => _senders;

    internal SeenPairs Pairs => _pairs;

    public bool TryTake(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        switch (request.Subject)
        {
            case AdmissionSubject.Envelope or AdmissionSubject.MediaOpen:
                return TakeMessage(request, out refusal);
            case AdmissionSubject.KeyBundleRequest:
                return TakeKeyBundleRequest(request, out refusal);
            default:
                refusal = default;
                return true;
        }
    }

    /// <summary>
    /// Lowers <paramref name="user"/>'s rate (of <paramref name="partner"/>) to <see cref="InteropOptions.TightenedUserEnvelopesPerSecond"/>
    /// for <see cref="InteropOptions.TightenDuration"/> from now (a later call extends it): what abuse reports against
    /// it may do. False, and nothing changes, unless <see cref="InteropOptions.TightenReportedSenders"/> is on.
    /// </summary>
    public bool TightenSender(IAdmissionPartner partner, ReadOnlySpan<byte> user)
    {
        if (!_tighten)
        {
            return false;
        }

        long now = NowNs();
        ulong key = XxHash3.HashToUInt64(user, (long)BucketsOf(partner).Seed);
        lock (_senders.LockOf(key))
        {
            ref SenderTable.Entry entry = ref _senders.Find(key, now);
            entry.TightenedUntil = now + _tightenNs;
        }

        if (_logger is not null)
        {
            RateLimitLog.SenderTightened(_logger, partner.Id, _tightenedRate, _tightenNs / TokenBucket.NsPerSecond);
        }

        return true;
    }

    /// <summary>Whether <paramref name="user"/> of <paramref name="partner"/> is tightened now.</summary>
    public bool IsTightened(IAdmissionPartner partner, ReadOnlySpan<byte> user)
    {
        long now = NowNs();
        ulong key = XxHash3.HashToUInt64(user, (long)BucketsOf(partner).Seed);
        lock (_senders.LockOf(key))
        {
            return _senders.Contains(key) && _senders.Find(key, now).TightenedUntil > now;
        }
    }

    private bool TakeMessage(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        IAdmissionPartner sender = request.Sender;
        RateLimitSettings limits = sender.RateLimits;
        PartnerBuckets buckets = BucketsOf(sender);
        long now = NowNs();

        // The partner's buckets: capacity one second's worth.
        long envelopeCost = limits.Costs.PartnerEnvelopeNs;
        long byteCost = limits.PartnerBytesPerSecond > 0 ? TokenBucket.CostNs(request.Bytes, limits.PartnerBytesPerSecond, TokenBucket.NsPerSecond) : 0;
        long wait = envelopeCost > 0 ? TokenBucket.WaitNs(Volatile.Read(ref buckets.Envelopes), now, envelopeCost, TokenBucket.NsPerSecond) : 0;
        if (wait > 0)
        {
            return PartnerEnvelopesRefused(sender, limits, wait, out refusal);
        }

        wait = byteCost > 0 ? TokenBucket.WaitNs(Volatile.Read(ref buckets.Bytes), now, byteCost, TokenBucket.NsPerSecond) : 0;
        if (wait > 0)
        {
            return PartnerBytesRefused(sender, limits, wait, out refusal);
        }

        if (limits.UserEnvelopesPerSecond == 0 && limits.NewConversationsPerHour == 0 && !_tighten)
        {
            return TakePartner(buckets, sender, limits, now, envelopeCost, byteCost, out refusal);
        }

        ulong key = Hash(request.SenderUser, buckets.Seed);
        lock (_senders.LockOf(key))
        {
            ref SenderTable.Entry entry = ref _senders.Find(key, now);

            // The user's envelopes, at the tightened rate while a tightening lasts.
            bool tightened = entry.TightenedUntil > now;
            long userRate = tightened ? _tightenedRate : limits.UserEnvelopesPerSecond;
            long userBurst = tightened ? _tightenedRate : limits.UserEnvelopeBurst;
            long userCost = tightened ? _tightenedCostNs : limits.Costs.UserEnvelopeNs;
            long userCapacity = tightened ? TokenBucket.NsPerSecond : limits.Costs.UserCapacityNs;
            wait = userCost > 0 ? TokenBucket.WaitNs(entry.Envelopes, now, userCost, userCapacity) : 0;
            if (wait > 0)
            {
                return UserEnvelopesRefused(sender, userRate, userBurst, tightened, wait, out refusal);
            }

            // A new conversation: a pair not seen within the last one to two hours. Recorded only once admitted, so a
            // refused first message is new again when resent.
            long conversationCost = 0;
            bool record = false;
            ulong pairLow = 0;
            ulong pairHigh = 0;
            if (limits.NewConversationsPerHour > 0)
            {
                pairLow = PairHash(key, request, out pairHigh);
                if (!_pairs.Seen(pairLow, pairHigh, now, out bool thisHour))
                {
                    conversationCost = limits.Costs.NewConversationNs;
                    wait = TokenBucket.WaitNs(entry.NewConversations, now, conversationCost, TokenBucket.NsPerHour);
                    if (wait > 0)
                    {
                        return NewConversationsRefused(sender, limits, wait, out refusal);
                    }
                }

                record = !thisHour;
            }

            if (!TakePartner(buckets, sender, limits, now, envelopeCost, byteCost, out refusal))
            {
                return false;
            }

            if (userCost > 0)
            {
                entry.Envelopes = TokenBucket.After(entry.Envelopes, now, userCost);
            }

            if (conversationCost > 0)
            {
                entry.NewConversations = TokenBucket.After(entry.NewConversations, now, conversationCost);
            }

            if (record)
            {
                _pairs.Record(pairLow, pairHigh, now);
            }

            return true;
        }
    }

    /// <summary>Takes the partner's tokens (checked already; a concurrent session may have taken them since): both or neither.</summary>
    private static bool TakePartner(PartnerBuckets buckets, IAdmissionPartner sender, RateLimitSettings limits, long now, long envelopeCost, long byteCost, out AdmissionRefusal refusal)
    {
        long wait = 0;
        if (envelopeCost > 0 && !TokenBucket.TryTakeShared(ref buckets.Envelopes, now, envelopeCost, TokenBucket.NsPerSecond, out wait))
        {
            return PartnerEnvelopesRefused(sender, limits, wait, out refusal);
        }

        if (byteCost > 0 && !TokenBucket.TryTakeShared(ref buckets.Bytes, now, byteCost, TokenBucket.NsPerSecond, out wait))
        {
            if (envelopeCost > 0)
            {
                TokenBucket.GiveBack(ref buckets.Envelopes, envelopeCost);
            }

            return PartnerBytesRefused(sender, limits, wait, out refusal);
        }

        refusal = default;
        return true;
    }

    private bool TakeKeyBundleRequest(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        IAdmissionPartner sender = request.Sender;
        long perMinute = sender.RateLimits.KeyBundleRequestsPerMinute;
        if (perMinute == 0)
        {
            refusal = default;
            return true;
        }

        long now = NowNs();
        ulong key = Hash(request.SenderUser, BucketsOf(sender).Seed);
        long cost = TokenBucket.CostNs(1, perMinute, TokenBucket.NsPerMinute);
        lock (_senders.LockOf(key))
        {
            ref SenderTable.Entry entry = ref _senders.Find(key, now);
            long wait = TokenBucket.WaitNs(entry.KeyBundleRequests, now, cost, TokenBucket.NsPerMinute);
            if (wait > 0)
            {
                refusal = new AdmissionRefusal(ErrorCode.RateLimited, $"requester user over {perMinute} key-bundle requests/minute of partner '{sender.Id}'", TokenBucket.RetryAfterMs(wait));
                return false;
            }

            entry.KeyBundleRequests = TokenBucket.After(entry.KeyBundleRequests, now, cost);
        }

        refusal = default;
        return true;
    }

    private static bool PartnerEnvelopesRefused(IAdmissionPartner sender, RateLimitSettings limits, long wait, out AdmissionRefusal refusal)
    {
        refusal = new AdmissionRefusal(ErrorCode.RateLimited, $"partner '{sender.Id}' over its {limits.PartnerEnvelopesPerSecond} envelopes/s", TokenBucket.RetryAfterMs(wait));
        return false;
    }

    private static bool PartnerBytesRefused(IAdmissionPartner sender, RateLimitSettings limits, long wait, out AdmissionRefusal refusal)
    {
        refusal = new AdmissionRefusal(ErrorCode.RateLimited, $"partner '{sender.Id}' over its {limits.PartnerBytesPerSecond} bytes/s", TokenBucket.RetryAfterMs(wait));
        return false;
    }

    private static bool UserEnvelopesRefused(IAdmissionPartner sender, long rate, long burst, bool tightened, long wait, out AdmissionRefusal refusal)
    {
        string detail = tightened
            ? $"sender user over its tightened {rate} envelopes/s of partner '{sender.Id}'"
            : $"sender user over {rate} envelopes/s (burst {burst}) of partner '{sender.Id}'";
        refusal = new AdmissionRefusal(ErrorCode.RateLimited, detail, TokenBucket.RetryAfterMs(wait));
        return false;
    }

    private static bool NewConversationsRefused(IAdmissionPartner sender, RateLimitSettings limits, long wait, out AdmissionRefusal refusal)
    {
        refusal = new AdmissionRefusal(ErrorCode.RateLimited, $"sender user over {limits.NewConversationsPerHour} new conversations/hour of partner '{sender.Id}'", TokenBucket.RetryAfterMs(wait));
        return false;
    }

    private long NowNs() => _clock.GetElapsedTime(_start).Ticks * 100;

    private PartnerBuckets BucketsOf(IAdmissionPartner partner) =>
        _partners.Find(partner) ?? _partners.GetOrAdd(partner, static p => new PartnerBuckets(XxHash3.HashToUInt64(p.IdUtf8)));

    /// <summary>
    /// 128 bits for the seen-pairs filters: the recipient user hashed once, seeded with the sender's key and the
    /// recipient partner (one xxHash128 over the user id, where two hashes and a third over both cost twice as much).
    /// </summary>
    private ulong PairHash(ulong senderKey, in AdmissionRequest request, out ulong high)
    {
        ulong partnerSeed = request.Recipient is { } partner ? BucketsOf(partner).Seed : 0;
        UInt128 hash = Internal.SequenceHash.XxHash128(request.RecipientUser, (long)(senderKey ^ (partnerSeed * 0x9E3779B97F4A7C15UL)));
        high = (ulong)(hash >> 64);
        return (ulong)hash;
    }

    /// <summary>A user id's 64-bit key under its partner's seed, from a slice of the frame (copied only when split).</summary>
    private static ulong Hash(in ReadOnlySequence<byte> user, ulong seed) => Internal.SequenceHash.XxHash3(user, (long)seed);
}
