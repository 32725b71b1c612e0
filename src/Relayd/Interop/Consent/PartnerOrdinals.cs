namespace Relayd.Interop.Consent;

/// <summary>
/// The small numbers consent scopes use for partners (bits of <see cref="ConsentScope"/>): given out in the order
/// partners are first named as a scope, never reused, kept in the snapshot and, after it, re-derived by replaying the
/// log in order. At most <see cref="ConsentScope.MaxOrdinals"/>. Reads are lock-free (copy-on-write dictionary).
/// </summary>
internal sealed class PartnerOrdinals
{
    private volatile Dictionary<string, int> _byId = new(StringComparer.Ordinal);
    private readonly List<string> _ids = [];

    /// <summary>Partner ids in ordinal order.</summary>
    public IReadOnlyList<string> Ids => _ids;

    /// <summary>The ordinal of <paramref name="partnerId"/>, -1 when it was never named in a scope. Allocation-free.</summary>
    public int Find(string partnerId) => _byId.TryGetValue(partnerId, out int ordinal) ? ordinal : -1;

    /// <summary>Whether <paramref name="partnerId"/> has an ordinal or one is still free.</summary>
    public bool CanName(string partnerId) => _byId.ContainsKey(partnerId) || _ids.Count < ConsentScope.MaxOrdinals;

    /// <summary>The ordinal of <paramref name="partnerId"/>, given out if it has none. Callers serialize writes.</summary>
    /// <exception cref="InvalidOperationException">All <see cref="ConsentScope.MaxOrdinals"/> ordinals are taken.</exception>
    public int GetOrAdd(string partnerId)
    {
        if (_byId.TryGetValue(partnerId, out int ordinal))
        {
            return ordinal;
        }

        if (_ids.Count >= ConsentScope.MaxOrdinals)
        {
            throw new InvalidOperationException($"consent scopes name at most {ConsentScope.MaxOrdinals} distinct partners");
        }

        ordinal = _ids.Count;
        _ids.Add(partnerId);
        _byId = new Dictionary<string, int>(_byId, StringComparer.Ordinal) { [partnerId] = ordinal };
        return ordinal;
    }
}
