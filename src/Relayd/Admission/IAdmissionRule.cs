namespace Relayd.Admission;

/// <summary>When in the route step a rule is checked.</summary>
internal enum AdmissionStage
{
    /// <summary>Before anything else: a refusal here answers even a resend of an envelope already stored.</summary>
    BeforeDedup,

    /// <summary>
    /// Only for what is not already stored (a resend still gets its Ack), just before it is stored. Envelopes: under
    /// the sender's dedup lock, so a rule here must be a few reads, never I/O or a wait.
    /// </summary>
    AfterDedup,
}

/// <summary>One admission rule: admits a request, or refuses it with a code, a detail and a retry-after.</summary>
internal interface IAdmissionRule
{
    AdmissionStage Stage { get; }

    /// <summary>True to admit; false with <paramref name="refusal"/> set. Allocates only when refusing.</summary>
    bool Check(in AdmissionRequest request, out AdmissionRefusal refusal);
}
