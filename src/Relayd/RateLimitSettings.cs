namespace Relayd;

/// <summary>
/// One partner's rate limits resolved against the <c>[interop]</c> defaults (0 = unlimited): immutable, carried by its
/// <c>PartnerSettings</c> so that a reload swaps them with the rest.
/// </summary>
internal sealed record RateLimitSettings(
    long PartnerEnvelopesPerSecond,
    long PartnerBytesPerSecond,
    long UserEnvelopesPerSecond,
    long UserEnvelopeBurst,
    long NewConversationsPerHour,
    long KeyBundleRequestsPerMinute)
{
    /// <summary>
    /// The token costs these rates come to, worked out once here rather than with a 64-bit division per bucket on every
    /// envelope. Not public: left out of the record's printed form (the config key table shows the rates).
    /// </summary>
    internal RateLimitCosts Costs { get; } = new(
        PartnerEnvelopesPerSecond > 0 ? Interop.RateLimits.TokenBucket.CostNs(1, PartnerEnvelopesPerSecond, Interop.RateLimits.TokenBucket.NsPerSecond) : 0,
        UserEnvelopesPerSecond > 0 ? Interop.RateLimits.TokenBucket.CostNs(1, UserEnvelopesPerSecond, Interop.RateLimits.TokenBucket.NsPerSecond) : 0,
        UserEnvelopesPerSecond > 0 ? Interop.RateLimits.TokenBucket.CostNs(UserEnvelopeBurst, UserEnvelopesPerSecond, Interop.RateLimits.TokenBucket.NsPerSecond) : 0,
        NewConversationsPerHour > 0 ? Interop.RateLimits.TokenBucket.CostNs(1, NewConversationsPerHour, Interop.RateLimits.TokenBucket.NsPerHour) : 0);

    /// <summary>The defaults of an <c>[interop]</c> table left empty.</summary>
    public static readonly RateLimitSettings Defaults = Resolve(new InteropOptions(), new PartnerOptions());

    public static RateLimitSettings Resolve(InteropOptions interop, PartnerOptions partner) => new(
        partner.PartnerEnvelopesPerSecond ?? interop.PartnerEnvelopesPerSecond,
        partner.PartnerBytesPerSecond ?? interop.PartnerBytesPerSecond,
        partner.UserEnvelopesPerSecond ?? interop.UserEnvelopesPerSecond,
        partner.UserEnvelopeBurst ?? interop.UserEnvelopeBurst,
        partner.NewConversationsPerHour ?? interop.NewConversationsPerHour,
        partner.KeyBundleRequestsPerMinute ?? interop.KeyBundleRequestsPerMinute);

    /// <summary>"user_envelopes_per_second 20 -> 5, ..." for the reload's log line; empty when equal.</summary>
    public string DescribeChanges(RateLimitSettings previous)
    {
        List<string> changes = [];
        Add(changes, "partner_envelopes_per_second", previous.PartnerEnvelopesPerSecond, PartnerEnvelopesPerSecond);
        Add(changes, "partner_bytes_per_second", previous.PartnerBytesPerSecond, PartnerBytesPerSecond);
        Add(changes, "user_envelopes_per_second", previous.UserEnvelopesPerSecond, UserEnvelopesPerSecond);
        Add(changes, "user_envelope_burst", previous.UserEnvelopeBurst, UserEnvelopeBurst);
        Add(changes, "new_conversations_per_hour", previous.NewConversationsPerHour, NewConversationsPerHour);
        Add(changes, "key_bundle_requests_per_minute", previous.KeyBundleRequestsPerMinute, KeyBundleRequestsPerMinute);
        return string.Join(", ", changes);
    }

    private static void Add(List<string> changes, string key, long before, long after)
    {
        if (before != after)
        {
            changes.Add($"{key} {before} -> {after}");
        }
    }
}

/// <summary>Nanoseconds of bucket time per token (0 = unlimited) and the user bucket's capacity: see <see cref="RateLimitSettings.Costs"/>.</summary>
internal readonly record struct RateLimitCosts(long PartnerEnvelopeNs, long UserEnvelopeNs, long UserCapacityNs, long NewConversationNs);
