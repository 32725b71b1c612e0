using System.Buffers;
using System.IO.Hashing;

namespace Relayd.Interop.Consent;

/// <summary>
/// The key of a user in a <see cref="UserConsentSet"/>: xxHash3 of the user id with the relay's consent seed (random
/// per consent store, kept in its snapshot, so a partner cannot aim its users' hashes at one probe chain). Never 0
/// (0 marks an empty slot). Allocation-free, also for a user id split over several segments.
/// </summary>
internal static class UserHash
{
    /// <summary>Longest user id a grant may name; a longer one can never have opted in.</summary>
    public const int MaxUserBytes = 256;

    public static ulong Of(ReadOnlySpan<byte> user, long seed)
    {
        ulong hash = XxHash3.HashToUInt64(user, seed);
        return hash == 0 ? 1 : hash;
    }

    /// <summary>The key of <paramref name="user"/>; false when it is longer than <see cref="MaxUserBytes"/>.</summary>
    public static bool TryOf(in ReadOnlySequence<byte> user, long seed, out ulong key)
    {
        if (user.Length > MaxUserBytes)
        {
            key = 0;
            return false;
        }

        ulong hash = Internal.SequenceHash.XxHash3(user, seed);
        key = hash == 0 ? 1 : hash;
        return true;
    }
}
