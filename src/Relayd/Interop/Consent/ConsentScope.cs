namespace Relayd.Interop.Consent;

/// <summary>
/// A user's consent as one 64-bit word: bit 63 says "with every partner"; bits 0..62 are partner ordinals
/// (<see cref="PartnerOrdinals"/>). Without bit 63 they are the partners granted one by one; with it they are the
/// partners revoked one by one from the grant to all (so "all but X" needs no second word). 0 = no consent at all.
/// </summary>
internal static class ConsentScope
{
    /// <summary>Ordinals 0..62 fit beside the all-partners bit.</summary>
    public const int MaxOrdinals = 63;

    public const ulong None = 0;

    public const ulong AllPartners = 1UL << 63;

    /// <summary>Whether <paramref name="scope"/> admits the partner of <paramref name="ordinal"/> (-1: a partner never named in a scope).</summary>
    public static bool Admits(ulong scope, int ordinal)
    {
        bool all = (scope & AllPartners) != 0;
        if (ordinal < 0)
        {
            return all;
        }

        bool marked = (scope & (1UL << ordinal)) != 0;
        return all ? !marked : marked;
    }

    /// <summary>The scope after a grant, for every partner (<paramref name="ordinal"/> -1) or for one.</summary>
    public static ulong Grant(ulong scope, int ordinal) =>
        ordinal < 0 ? AllPartners
        : (scope & AllPartners) != 0 ? scope & ~(1UL << ordinal)
        : scope | (1UL << ordinal);

    /// <summary>The scope after a revoke, for every partner (<paramref name="ordinal"/> -1) or for one.</summary>
    public static ulong Revoke(ulong scope, int ordinal) =>
        ordinal < 0 ? None
        : (scope & AllPartners) != 0 ? scope | (1UL << ordinal)
        : scope & ~(1UL << ordinal);
}
