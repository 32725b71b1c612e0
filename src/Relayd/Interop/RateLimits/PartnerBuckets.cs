namespace Relayd.Interop.RateLimits;

/// <summary>
/// One sender partner's shared buckets (envelopes, bytes) and the seed its users' keys are hashed with. Padded apart:
/// every session of a busy partner CASes them.
/// </summary>
internal sealed class PartnerBuckets
{
    public PartnerBuckets(ulong seed) => Seed = seed;

    /// <summary>XxHash3 of the partner id: users of two partners with the same id bytes get different keys.</summary>
    public ulong Seed { get; }

    public long Envelopes;

#pragma warning disable IDE0051, CS0169 // padding: keeps the two hot counters on separate cache lines
    private readonly long _pad1, _pad2, _pad3, _pad4, _pad5, _pad6, _pad7;
#pragma warning restore IDE0051, CS0169

    public long Bytes;
}
