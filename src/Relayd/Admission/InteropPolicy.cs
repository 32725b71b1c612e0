namespace Relayd.Admission;

/// <summary>
/// The interop rules' state the pipelines consult: who opted in, and the rate limits. Built once by the composition
/// root (<c>Relay</c>) and handed to every path's pipeline.
/// </summary>
internal sealed record InteropPolicy(IConsentPolicy Consent, IRateLimiter RateLimits)
{
    /// <summary>No opt-in required and no rate limits: what tests of other rules use.</summary>
    public static readonly InteropPolicy None = new(NoConsentRequired.Instance, NoRateLimits.Instance);

    /// <summary>The content kinds the relay carries at all (<c>[interop] kinds</c>); every kind unless set.</summary>
    public RelayKindPolicy Kinds { get; init; } = RelayKindPolicy.Everything;
}
