namespace Relayd.Interop.RateLimits;

/// <summary>
/// Token-bucket arithmetic as a "theoretical arrival time" (GCRA): a bucket is one <c>long</c>, the time in nanoseconds
/// at which it would be full again. Taking n tokens moves it n intervals later; the bucket is short when that would
/// put it more than its capacity ahead of now, and the excess is exactly how long to wait. A bucket at or before now is
/// full, the same as a fresh one (0): that is what lets idle senders be evicted without losing anything.
/// </summary>
internal static class TokenBucket
{
    public const long NsPerSecond = 1_000_000_000;
    public const long NsPerMinute = 60 * NsPerSecond;
    public const long NsPerHour = 60 * NsPerMinute;

    /// <summary>Nanoseconds that <paramref name="tokens"/> tokens stand for at <paramref name="count"/> per <paramref name="periodNs"/> (rounded up, at least 1).</summary>
    public static long CostNs(long tokens, long count, long periodNs)
    {
        if (tokens <= 0)
        {
            return 0;
        }

        if (tokens <= long.MaxValue / periodNs)
        {
            return Math.Max(1, (tokens * periodNs + count - 1) / count);
        }

        UInt128 ns = ((UInt128)(ulong)tokens * (ulong)periodNs + (ulong)count - 1) / (ulong)count;
        return ns >= long.MaxValue / 4 ? long.MaxValue / 4 : (long)ns;
    }

    /// <summary>
    /// Nanoseconds to wait before <paramref name="costNs"/> can be taken from the bucket <paramref name="tat"/> of
    /// capacity <paramref name="capacityNs"/>; 0 = now. A cost above the capacity (a blob larger than a second's bytes)
    /// is taken once the bucket is full, and puts it in debt.
    /// </summary>
    public static long WaitNs(long tat, long nowNs, long costNs, long capacityNs)
    {
        long over = Math.Max(tat, nowNs) - nowNs + Math.Min(costNs, capacityNs) - capacityNs;
        return over > 0 ? over : 0;
    }

    /// <summary>The bucket after <paramref name="costNs"/> was taken (check <see cref="WaitNs"/> first).</summary>
    public static long After(long tat, long nowNs, long costNs) => Math.Max(tat, nowNs) + costNs;

    /// <summary>Takes from a bucket shared between threads (a partner's): false with the wait when short.</summary>
    public static bool TryTakeShared(ref long tat, long nowNs, long costNs, long capacityNs, out long waitNs)
    {
        while (true)
        {
            long current = Volatile.Read(ref tat);
            waitNs = WaitNs(current, nowNs, costNs, capacityNs);
            if (waitNs > 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref tat, After(current, nowNs, costNs), current) == current)
            {
                return true;
            }
        }
    }

    /// <summary>Gives back what <see cref="TryTakeShared"/> took (another bucket of the same request was short).</summary>
    public static void GiveBack(ref long tat, long costNs) => Interlocked.Add(ref tat, -costNs);

    /// <summary>A wait as the retry_after_ms a partner is sent: rounded up, at least 1 ms.</summary>
    public static uint RetryAfterMs(long waitNs) => (uint)Math.Clamp((waitNs + 999_999) / 1_000_000, 1, uint.MaxValue);
}
