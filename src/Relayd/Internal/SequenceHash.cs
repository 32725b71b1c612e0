using System.Buffers;
using System.IO.Hashing;

namespace Relayd.Internal;

/// <summary>
/// xxHash3 (and xxHash128) of a field sliced from a frame: hashed in place when it lies in one segment (nearly always), else copied
/// to the stack (or a pooled buffer when long), so hashing allocates nothing either way. The one place the shard
/// choice, the consent keys, the rate-limit keys and the carried-message hashes turn a sequence into a hash.
/// </summary>
internal static class SequenceHash
{
    private const int StackBytes = 1024;

    public static ulong XxHash3(in ReadOnlySequence<byte> value, long seed = 0)
    {
        if (value.IsSingleSegment)
        {
            return System.IO.Hashing.XxHash3.HashToUInt64(value.FirstSpan, seed);
        }

        int length = checked((int)value.Length);
        byte[]? rented = length > StackBytes ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> copy = rented is null ? stackalloc byte[StackBytes] : rented;
        copy = copy[..length];
        value.CopyTo(copy);
        ulong hash = System.IO.Hashing.XxHash3.HashToUInt64(copy, seed);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        return hash;
    }

    /// <summary>xxHash128 of a field sliced from a frame, the same way (for the rate limiter's seen-pairs filters).</summary>
    public static UInt128 XxHash128(in ReadOnlySequence<byte> value, long seed = 0)
    {
        if (value.IsSingleSegment)
        {
            return System.IO.Hashing.XxHash128.HashToUInt128(value.FirstSpan, seed);
        }

        int length = checked((int)value.Length);
        byte[]? rented = length > StackBytes ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> copy = rented is null ? stackalloc byte[StackBytes] : rented;
        copy = copy[..length];
        value.CopyTo(copy);
        UInt128 hash = System.IO.Hashing.XxHash128.HashToUInt128(copy, seed);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        return hash;
    }
}
