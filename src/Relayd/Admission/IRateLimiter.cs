namespace Relayd.Admission;

/// <summary>
/// The spam and rate limits (token buckets per sender partner, per sender user, new conversations): what
/// <see cref="RateLimitRule"/> asks. Declared here, implemented in <c>Interop/RateLimits</c>.
/// </summary>
internal interface IRateLimiter
{
    /// <summary>
    /// Takes the request's tokens from every bucket it counts against, or none when one is short: then false with
    /// RATE_LIMITED and a retry-after computed from the emptiest bucket. Allocates only when refusing.
    /// </summary>
    bool TryTake(in AdmissionRequest request, out AdmissionRefusal refusal);
}

/// <summary>The limiter when none is wired in: nothing is limited.</summary>
internal sealed class NoRateLimits : IRateLimiter
{
    public static readonly NoRateLimits Instance = new();

    public bool TryTake(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        refusal = default;
        return true;
    }
}
