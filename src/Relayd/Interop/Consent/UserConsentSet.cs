namespace Relayd.Interop.Consent;

/// <summary>
/// One partner's opted-in users: an open-addressing hash table (linear probing) from a 64-bit hash of the user id to
/// its <see cref="ConsentScope"/> word, in one <c>ulong[]</c> of (key, scope) pairs. Key 0 marks an empty slot.
/// </summary>
/// <remarks>
/// <para>Memory: 16 bytes a slot; the table doubles when it would pass 3/4 full, so between 3/8 and 3/4 of the slots
/// are used: 21 to 43 bytes per user (measured: ConsentTableMemoryTests), e.g. 10 M users in 2^24 slots = 256 MiB,
/// 27 B each. A revoked user keeps its slot (scope 0) until the next snapshot drops it.</para>
/// <para>Only the hash is kept, never the user id: two users whose hashes collide share one scope. With n users in a
/// partner's table the chance that a user who never opted in is taken for one who did is n / 2^64 per lookup
/// (5.4e-13 for 10 M users); the chance that any two of the n collide at all is about n^2 / 2^65 (2.7e-6 for 10 M).</para>
/// <para>Concurrency: writers hold <see cref="SyncRoot"/>; readers take no lock. A new slot's scope is written before
/// its key (a release write), so a reader that sees the key sees the scope; a scope word is replaced by one atomic
/// 64-bit write; growing builds a new array and publishes it with one volatile write, so a reader works on either the
/// old array or the new one, both complete.</para>
/// </remarks>
internal sealed class UserConsentSet
{
    private const int InitialSlots = 16;

    private volatile ulong[] _slots = new ulong[InitialSlots * 2];
    private int _used;

    /// <summary>Held by whoever changes the set.</summary>
    public Lock SyncRoot { get; } = new();

    /// <summary>Users with a slot (revoked ones included until a snapshot drops them).</summary>
    public int Count => Volatile.Read(ref _used);

    /// <summary>Bytes of the slot array now.</summary>
    public long SlotBytes => _slots.LongLength * sizeof(ulong);

    /// <summary>The scope of the user with <paramref name="key"/> (see <see cref="UserHash"/>); 0 when unknown. Lock-free, allocation-free.</summary>
    public ulong Find(ulong key)
    {
        ulong[] slots = _slots;
        int mask = (slots.Length >> 1) - 1;
        int i = (int)key & mask;
        while (true)
        {
            ulong found = Volatile.Read(ref slots[2 * i]);
            if (found == key)
            {
                return Volatile.Read(ref slots[(2 * i) + 1]);
            }

            if (found == 0)
            {
                return ConsentScope.None;
            }

            i = (i + 1) & mask;
        }
    }

    /// <summary>Sets the scope of <paramref name="key"/>'s user. Callers hold <see cref="SyncRoot"/>.</summary>
    public void Set(ulong key, ulong scope)
    {
        ulong[] slots = _slots;
        int index = IndexOf(slots, key);
        if (slots[2 * index] == key)
        {
            Volatile.Write(ref slots[(2 * index) + 1], scope);
            return;
        }

        if (scope == ConsentScope.None)
        {
            return; // revoking a user the set never held: nothing to keep
        }

        if ((_used + 1) * 4L > (slots.Length >> 1) * 3L)
        {
            slots = Grown(slots);
            _slots = slots;
            index = IndexOf(slots, key);
        }

        slots[(2 * index) + 1] = scope;
        Volatile.Write(ref slots[2 * index], key);
        Volatile.Write(ref _used, _used + 1);
    }

    /// <summary>Every (key, scope) with a non-zero scope, for the snapshot. Callers hold <see cref="SyncRoot"/>.</summary>
    public void CopyTo(List<(ulong Key, ulong Scope)> destination)
    {
        ulong[] slots = _slots;
        for (int i = 0; i < slots.Length; i += 2)
        {
            if (slots[i] != 0 && slots[i + 1] != ConsentScope.None)
            {
                destination.Add((slots[i], slots[i + 1]));
            }
        }
    }

    /// <summary>The slot holding <paramref name="key"/>, or the empty slot where it would go.</summary>
    private static int IndexOf(ulong[] slots, ulong key)
    {
        int mask = (slots.Length >> 1) - 1;
        int i = (int)key & mask;
        while (slots[2 * i] != key && slots[2 * i] != 0)
        {
            i = (i + 1) & mask;
        }

        return i;
    }

    private static ulong[] Grown(ulong[] slots)
    {
        var grown = new ulong[slots.Length * 2];
        for (int i = 0; i < slots.Length; i += 2)
        {
            if (slots[i] != 0)
            {
                int at = IndexOf(grown, slots[i]);
                grown[2 * at] = slots[i];
                grown[(2 * at) + 1] = slots[i + 1];
            }
        }

        return grown;
    }
}
