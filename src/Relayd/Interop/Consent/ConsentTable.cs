using System.Buffers;
using Relayd.Admission;
using Relayd.Protocol.V1;

namespace Relayd.Interop.Consent;

/// <summary>
/// Who opted in, in memory: per partner a <see cref="UserConsentSet"/> of its users' hashed ids and their scopes.
/// What <see cref="OptInRule"/> consults on every envelope, MediaOpen, key-bundle request and typing notice (lock-free,
/// allocation-free); changed only by <see cref="Apply"/>, in log order (<see cref="ConsentStore"/>).
/// </summary>
/// <remarks>
/// Bytes per opted-in user: 16 per slot at a load between 3/8 and 3/4, i.e. 21 to 43 B (about 35 B measured for 1 M
/// users; 27 B for 10 M), within the 48 B target, so 10 M users of one partner take about 256 MiB. False admits (a
/// user who never opted in whose hash equals an opted-in one's): n / 2^64 per lookup with n users in the partner's
/// table (see <see cref="UserConsentSet"/>).
/// </remarks>
internal sealed class ConsentTable : IConsentPolicy
{
    private readonly Lock _writeLock = new();
    private volatile Dictionary<string, UserConsentSet> _byPartner = new(StringComparer.Ordinal);
    private readonly PartnerSlotTable<PartnerView> _views = new();
    private int _revokeEpoch = 1; // 0 and -1 mean "never checked" in the shard queues

    public ConsentTable(bool required, long seed)
    {
        Required = required;
        Seed = seed;
    }

    public bool Required { get; }

    /// <summary>The hash seed of this table's keys (kept in the snapshot).</summary>
    public long Seed { get; }

    public PartnerOrdinals Ordinals { get; } = new();

    /// <summary>Changes each time a batch revokes something: queued envelopes admitted under an older epoch are checked again before delivery.</summary>
    public int RevokeEpoch => Volatile.Read(ref _revokeEpoch);

    /// <summary>Users with a slot, over all partners (revoked ones until the next snapshot).</summary>
    public long Users
    {
        get
        {
            long users = 0;
            foreach (UserConsentSet set in _byPartner.Values)
            {
                users += set.Count;
            }

            return users;
        }
    }

    /// <summary>Bytes of every partner's slot arrays.</summary>
    public long Bytes
    {
        get
        {
            long bytes = 0;
            foreach (UserConsentSet set in _byPartner.Values)
            {
                bytes += set.SlotBytes;
            }

            return bytes;
        }
    }

    /// <summary>Held while a batch is applied or the table is copied for a snapshot.</summary>
    public Lock SyncRoot => _writeLock;

    public bool OptedIn(IAdmissionPartner partner, in ReadOnlySequence<byte> user, IAdmissionPartner counterpart)
    {
        if (ViewOf(partner).Set(this, partner) is not { } set || !UserHash.TryOf(user, Seed, out ulong key))
        {
            return false;
        }

        ulong scope = set.Find(key);
        return scope != ConsentScope.None && ConsentScope.Admits(scope, ViewOf(counterpart).Ordinal(this, counterpart));
    }

    private PartnerView ViewOf(IAdmissionPartner partner) => _views.Find(partner) ?? _views.GetOrAdd(partner, static _ => new PartnerView());

    /// <summary>
    /// What the lookups need of a partner, cached on its slot: its users' set and its scope ordinal, found by id (a
    /// string hash each) only until they exist. Both never change once they do: sets are never replaced, ordinals
    /// never given back. Filled by whichever thread looks first; the values are the same whoever writes them.
    /// </summary>
    private sealed class PartnerView
    {
        private UserConsentSet? _set;
        private int _ordinal = -1;

        public UserConsentSet? Set(ConsentTable table, IAdmissionPartner partner)
        {
            UserConsentSet? set = Volatile.Read(ref _set);
            if (set is null && table._byPartner.TryGetValue(partner.Id, out set))
            {
                Volatile.Write(ref _set, set);
            }

            return set;
        }

        public int Ordinal(ConsentTable table, IAdmissionPartner partner)
        {
            int ordinal = Volatile.Read(ref _ordinal);
            if (ordinal < 0 && (ordinal = table.Ordinals.Find(partner.Id)) >= 0)
            {
                Volatile.Write(ref _ordinal, ordinal);
            }

            return ordinal;
        }
    }

    /// <summary>Applies <paramref name="update"/> from <paramref name="owner"/> (already validated). Callers hold <see cref="SyncRoot"/>.</summary>
    public void Apply(string owner, ConsentUpdate update)
    {
        UserConsentSet set = SetOf(owner);
        bool revoked = false;
        lock (set.SyncRoot)
        {
            foreach (ConsentChange change in update.Changes)
            {
                if (change.User.Length > UserHash.MaxUserBytes)
                {
                    continue; // validated away before it was logged; a hand-made log cannot make it count
                }

                ulong key = UserHash.Of(change.User.Span, Seed);
                int ordinal = change.ScopePartner.Length == 0 ? -1 : Ordinals.GetOrAdd(change.ScopePartner);
                ulong scope = set.Find(key);
                if (change.Action == ConsentAction.ConsentRevoke)
                {
                    set.Set(key, ConsentScope.Revoke(scope, ordinal));
                    revoked = true;
                }
                else if (change.Action == ConsentAction.ConsentGrant)
                {
                    set.Set(key, ConsentScope.Grant(scope, ordinal));
                }
            }
        }

        if (revoked)
        {
            Interlocked.Increment(ref _revokeEpoch);
        }
    }

    /// <summary>Restores one user from a snapshot. Callers hold <see cref="SyncRoot"/>.</summary>
    public void Restore(string owner, ulong key, ulong scope)
    {
        UserConsentSet set = SetOf(owner);
        lock (set.SyncRoot)
        {
            set.Set(key, scope);
        }
    }

    /// <summary>Every partner's users with a scope, for the snapshot. Callers hold <see cref="SyncRoot"/>.</summary>
    public List<(string Owner, List<(ulong Key, ulong Scope)> Users)> Copy()
    {
        var copy = new List<(string, List<(ulong, ulong)>)>();
        foreach ((string owner, UserConsentSet set) in _byPartner)
        {
            var users = new List<(ulong, ulong)>(set.Count);
            lock (set.SyncRoot)
            {
                set.CopyTo(users);
            }

            copy.Add((owner, users));
        }

        return copy;
    }

    private UserConsentSet SetOf(string owner)
    {
        if (_byPartner.TryGetValue(owner, out UserConsentSet? set))
        {
            return set;
        }

        set = new UserConsentSet();
        _byPartner = new Dictionary<string, UserConsentSet>(_byPartner, StringComparer.Ordinal) { [owner] = set };
        return set;
    }
}
