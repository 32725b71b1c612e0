namespace Relayd.Admission;

/// <summary>
/// The sender is within its rate limits. Placed last but the storage check, so what another rule refuses takes no
/// tokens; for envelopes after the dedup check, so a resend of an accepted id takes none either.
/// </summary>
internal sealed class RateLimitRule : IAdmissionRule
{
    private readonly IRateLimiter _limiter;

    public RateLimitRule(IRateLimiter limiter, AdmissionStage stage)
    {
        _limiter = limiter;
        Stage = stage;
    }

    public AdmissionStage Stage { get; }

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (request.RateLimitTaken)
        {
            refusal = default;
            return true;
        }

        return _limiter.TryTake(request, out refusal);
    }
}
