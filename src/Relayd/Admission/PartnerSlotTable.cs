namespace Relayd.Admission;

/// <summary>
/// A per-partner value looked up by <see cref="IAdmissionPartner.Slot"/>: an array read, where a dictionary keyed by
/// the partner's id (a string hash per lookup) or a ConditionalWeakTable cost tens of nanoseconds on every envelope.
/// Reads are lock-free; a miss adds under a lock, copying the array (partners are few and added rarely).
/// </summary>
/// <remarks>A value stays until the table goes; partner objects are few (one per approved partner, a new one only when a partner is approved again).</remarks>
internal sealed class PartnerSlotTable<T>
    where T : class
{
    private readonly Lock _grow = new();
    private volatile T?[] _values = new T?[8];

    /// <summary>The value of <paramref name="partner"/>, or null when none was added.</summary>
    public T? Find(IAdmissionPartner partner)
    {
        T?[] values = _values;
        int slot = partner.Slot;
        return (uint)slot < (uint)values.Length ? values[slot] : null;
    }

    /// <summary>The value of <paramref name="partner"/>, made by <paramref name="create"/> on first use.</summary>
    public T GetOrAdd(IAdmissionPartner partner, Func<IAdmissionPartner, T> create) => Find(partner) ?? Add(partner, create(partner));

    /// <summary>Sets the value of <paramref name="partner"/> (a cache filled by its owner); an existing one is kept and returned.</summary>
    public T Add(IAdmissionPartner partner, T value)
    {
        lock (_grow)
        {
            T?[] values = _values;
            int slot = partner.Slot;
            if ((uint)slot < (uint)values.Length && values[slot] is { } existing)
            {
                return existing;
            }

            if ((uint)slot < (uint)values.Length)
            {
                values[slot] = value; // a reference write: a lock-free reader sees null (and comes here) or the value
                return value;
            }

            // Only a slot beyond the array grows it. (Growing on every add, as before, doubled it per partner:
            // relayd dev with 32 partners was OOM-killed at 24 GB.)
            var grown = new T?[Math.Max(2 * values.Length, slot + 8)];
            values.CopyTo(grown, 0);
            grown[slot] = value;
            _values = grown;
            return value;
        }
    }
}
