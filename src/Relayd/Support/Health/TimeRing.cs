namespace Relayd.Support.Health;

/// <summary>
/// A fixed ring of time buckets (slot = period mod slots) that writers on several threads share without a lock: the
/// first writer of a new period claims the slot and clears it exactly once; later writers of that period count into
/// it with Interlocked. What a bucket held <see cref="Slots"/> periods ago is overwritten: memory is fixed.
/// </summary>
/// <remarks>
/// A writer that meets a slot being cleared spins for the clear (a few hundred nanoseconds, once per period per
/// ring); one whose event is older than what the slot now holds drops it (it is out of every window already).
/// </remarks>
internal abstract class TimeRing
{
    private const long Clearing = long.MinValue;
    private const long Never = -1;

    private readonly long[] _periods; // the period each slot holds; Clearing while its claimer clears it

    protected TimeRing(int slots, long periodMs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(periodMs, 1);
        Slots = slots;
        PeriodMs = periodMs;
        _periods = new long[slots];
        Array.Fill(_periods, Never);
    }

    /// <summary>Buckets in the ring: also the longest window it can answer, in periods.</summary>
    public int Slots { get; }

    /// <summary>Milliseconds one bucket covers.</summary>
    public long PeriodMs { get; }

    /// <summary>The slot of the bucket for <paramref name="nowMs"/>, claimed (and cleared) if it held an older period; false for an event too old to count.</summary>
    protected bool TryEnter(long nowMs, out int slot)
    {
        long period = Math.Max(nowMs, 0) / PeriodMs;
        slot = (int)(period % Slots);
        SpinWait spin = default;
        while (true)
        {
            long held = Volatile.Read(ref _periods[slot]);
            if (held == period)
            {
                return true;
            }

            if (held == Clearing)
            {
                spin.SpinOnce(sleep1Threshold: -1); // never Sleep(1) on the data path: the clear is short
                continue;
            }

            if (held > period)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _periods[slot], Clearing, held) == held)
            {
                Clear(slot);
                Volatile.Write(ref _periods[slot], period); // publishes the cleared bucket
                return true;
            }
        }
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for each slot holding one of the <paramref name="periods"/> periods up to and
    /// including the one of <paramref name="nowMs"/> (the current, partial bucket and the ones before it); buckets a
    /// writer stamped slightly ahead of the reader's clock count as current.
    /// </summary>
    protected void ForEachInWindow<TState>(long nowMs, int periods, ref TState state, SlotVisitor<TState> visit)
        where TState : allows ref struct
    {
        long first = Math.Max(nowMs, 0) / PeriodMs - Math.Min(periods, Slots) + 1;
        for (int slot = 0; slot < Slots; slot++)
        {
            long held = Volatile.Read(ref _periods[slot]);
            if (held != Clearing && held >= first)
            {
                visit(slot, ref state);
            }
        }
    }

    protected delegate void SlotVisitor<TState>(int slot, ref TState state)
        where TState : allows ref struct;

    /// <summary>Zeroes the bucket of <paramref name="slot"/>; called only by the writer that claimed it.</summary>
    protected abstract void Clear(int slot);
}

/// <summary>A <see cref="TimeRing"/> of <see cref="Width"/> counters per bucket (one flat array, slot-major).</summary>
internal sealed class CounterRing : TimeRing
{
    private readonly long[] _counts;

    public CounterRing(int slots, long periodMs, int width)
        : base(slots, periodMs)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        Width = width;
        _counts = new long[slots * width];
    }

    public int Width { get; }

    /// <summary>Adds <paramref name="delta"/> to counter <paramref name="counter"/> of the bucket of <paramref name="nowMs"/>.</summary>
    public void Add(long nowMs, int counter, long delta = 1)
    {
        if (TryEnter(nowMs, out int slot))
        {
            Interlocked.Add(ref _counts[(slot * Width) + counter], delta);
        }
    }

    /// <summary>Counter <paramref name="counter"/> summed over the last <paramref name="periods"/> buckets (the current one included).</summary>
    public long Sum(long nowMs, int periods, int counter)
    {
        var sum = new SumState { Counts = _counts, Index = counter, Width = Width };
        ForEachInWindow(nowMs, periods, ref sum, static (int slot, ref SumState s) => s.Total += Volatile.Read(ref s.Counts[(slot * s.Width) + s.Index]));
        return sum.Total;
    }

    /// <summary>Counters <paramref name="first"/> .. first + into.Length - 1, each summed over the window, into <paramref name="into"/>.</summary>
    public void SumRange(long nowMs, int periods, int first, Span<long> into)
    {
        into.Clear();
        var sum = new RangeState { Counts = _counts, First = first, Width = Width, Into = into };
        ForEachInWindow(nowMs, periods, ref sum, static (int slot, ref RangeState s) =>
        {
            int at = (slot * s.Width) + s.First;
            for (int i = 0; i < s.Into.Length; i++)
            {
                s.Into[i] += Volatile.Read(ref s.Counts[at + i]);
            }
        });
    }

    protected override void Clear(int slot) => Array.Clear(_counts, slot * Width, Width);

    private struct SumState
    {
        public long[] Counts;
        public int Index;
        public int Width;
        public long Total;
    }

    private ref struct RangeState
    {
        public long[] Counts;
        public int First;
        public int Width;
        public Span<long> Into;
    }
}
