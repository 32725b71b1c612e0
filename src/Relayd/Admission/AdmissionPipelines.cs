namespace Relayd.Admission;

/// <summary>
/// The rules of each path, in the order they are checked: the one place that order is written. Opt-in comes after
/// every rule about the request itself (a malformed one learns that first) and the rate limits last but storage, so
/// that only what would otherwise be taken uses tokens.
/// </summary>
internal static class AdmissionPipelines
{
    /// <summary>An envelope: who sends it, where it goes, whether the recipient can take it, then room to store it.</summary>
    public static AdmissionPipeline Envelopes(RelayLimits limits, InteropPolicy interop) => new(
        new SenderRule(),
        new SuspensionRule(),
        new EnvelopeFieldsRule(),
        new RecipientRule(),
        new RelayKindsRule(interop.Kinds),
        new ContentKindRule(),
        new RecipientFrameLimitRule(),
        new ExpiryRule(),
        new OptInRule(interop.Consent),
        new RateLimitRule(interop.RateLimits, AdmissionStage.AfterDedup),
        new StorageRule(limits.QueueFullRetryAfter));

    /// <summary>
    /// A MediaOpen, before any byte of the blob is taken. What depends on the transfers open now (an existing id, the
    /// per-partner transfer count and spool quota) is checked by the media router where it reserves the slot, under its
    /// lock: a check apart from the reservation would let two opens both pass. There is no after-dedup stage: the WAL's
    /// reserve does not govern the spool (a spool that cannot be written answers STORAGE_FULL itself).
    /// </summary>
    public static AdmissionPipeline MediaOpen(InteropPolicy interop) => new(
        new SenderRule(),
        new SuspensionRule(),
        new RecipientRule(),
        new RelayKindsRule(interop.Kinds),
        new ContentKindRule(),
        new RecipientFrameLimitRule(),
        new MediaOpenFieldsRule(),
        new MediaSizeRule(),
        new ExpiryRule(),
        new OptInRule(interop.Consent),
        new RateLimitRule(interop.RateLimits, AdmissionStage.BeforeDedup));

    /// <summary>A KeyBundleRequest, before it is forwarded to the target partner (routed live, never stored).</summary>
    public static AdmissionPipeline KeyBundleRequest(InteropPolicy interop) => new(
        new SenderRule(),
        new SuspensionRule(),
        new RecipientRule(),
        new OptInRule(interop.Consent),
        new RateLimitRule(interop.RateLimits, AdmissionStage.BeforeDedup));

    /// <summary>A Typing notice, before it is handed to a connected session of the recipient partner (never stored).</summary>
    public static AdmissionPipeline Typing(InteropPolicy interop) => new(
        new SenderRule(),
        new SuspensionRule(),
        new RecipientRule(),
        new OptInRule(interop.Consent));
}
