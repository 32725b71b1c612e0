using System.Buffers;

namespace Relayd.Admission;

/// <summary>
/// Who opted in to cross-app chats (what each partner told the relay in ConsentUpdate): what <see cref="OptInRule"/>
/// asks. Declared here, implemented by the consent table (<c>Interop/Consent</c>), so the rules depend on no folder
/// that uses them.
/// </summary>
internal interface IConsentPolicy
{
    /// <summary>False when <c>[interop] require_opt_in</c> is off: every pair is admitted.</summary>
    bool Required { get; }

    /// <summary>
    /// Whether <paramref name="partner"/>'s user <paramref name="user"/> opted in to conversations with users of
    /// <paramref name="counterpart"/> (a grant for all partners or for that one, not revoked since). False for a user
    /// the relay has never heard of: the caller cannot tell the two apart. Allocates nothing.
    /// </summary>
    bool OptedIn(IAdmissionPartner partner, in ReadOnlySequence<byte> user, IAdmissionPartner counterpart);

    /// <summary>
    /// Changes whenever a revoke takes effect (never 0 or -1): an envelope queued under an older value is checked
    /// again before it is delivered (a revoke also stops what is queued). A policy that never revokes keeps 1.
    /// </summary>
    int RevokeEpoch => 1;
}

/// <summary>The policy when no consent table is wired in: nothing is required.</summary>
internal sealed class NoConsentRequired : IConsentPolicy
{
    public static readonly NoConsentRequired Instance = new();

    public bool Required => false;

    public bool OptedIn(IAdmissionPartner partner, in ReadOnlySequence<byte> user, IAdmissionPartner counterpart) => true;

    public int RevokeEpoch => 1;
}
