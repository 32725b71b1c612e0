using System.Buffers;

namespace Relayd.Routing;

/// <summary>
/// The approved partners now: the current <see cref="PartnerTable"/>, which <see cref="Replace"/> swaps atomically
/// (readers never lock; one that already holds a snapshot keeps a consistent view of it).
/// </summary>
internal sealed class PartnerDirectory
{
    private PartnerTable _current;

    public PartnerDirectory(RelayOptions options) => _current = PartnerTable.Create(options);

    /// <summary>The snapshot in force.</summary>
    public PartnerTable Current => Volatile.Read(ref _current);

    /// <summary>The partners of the current snapshot.</summary>
    public PartnerInfo[] Partners => Current.Partners;

    public PartnerInfo? Find(string id) => Current.Find(id);

    /// <summary>Finds a partner by its UTF-8 id as it appears in a frame, without allocating.</summary>
    public PartnerInfo? Find(in ReadOnlySequence<byte> utf8Id) => Current.Find(utf8Id);

    /// <summary>
    /// Makes the partners of <paramref name="options"/> (validated) the approved ones: a partner already approved keeps
    /// its object (its queues, dedup index and held receipts) and takes the new settings; a new one gets a new object;
    /// one no longer listed is retired (<see cref="PartnerInfo.IsRetired"/>). Returns what changed. Reloads call this one
    /// at a time.
    /// </summary>
    /// <exception cref="ArgumentException">The options name a partner twice.</exception>
    public PartnerChanges Replace(RelayOptions options)
    {
        PartnerTable previous;
        PartnerTable next;
        while (true)
        {
            // Built from the snapshot it replaces, so a concurrent replacement cannot drop a kept partner's object.
            previous = Current;
            next = previous.Next(options);
            if (Interlocked.CompareExchange(ref _current, next, previous) == previous)
            {
                break;
            }
        }

        List<PartnerInfo> added = [];
        List<(PartnerInfo Partner, string Changes)> reconfigured = [];
        for (int i = 0; i < next.Partners.Length; i++)
        {
            PartnerInfo partner = next.Partners[i];
            if (previous.Find(partner.Id) is null)
            {
                added.Add(partner);
                continue;
            }

            var settings = new PartnerSettings(options.Partners[i], options.Limits, options.Media.MaxBytes, options.Interop);
            string changes = settings.DescribeChanges(partner.Settings);
            partner.Reconfigure(settings);
            if (changes.Length > 0)
            {
                reconfigured.Add((partner, changes));
            }
        }

        List<PartnerInfo> removed = [];
        foreach (PartnerInfo partner in previous.Partners)
        {
            if (next.Find(partner.Id) is null)
            {
                partner.Retire();
                removed.Add(partner);
            }
        }

        return new PartnerChanges(added, removed, reconfigured);
    }
}

/// <summary>What one <see cref="PartnerDirectory.Replace"/> changed.</summary>
/// <param name="Added">Newly approved partners.</param>
/// <param name="Removed">Partners no longer approved (retired).</param>
/// <param name="Reconfigured">Kept partners whose settings changed, with what changed.</param>
internal sealed record PartnerChanges(IReadOnlyList<PartnerInfo> Added, IReadOnlyList<PartnerInfo> Removed, IReadOnlyList<(PartnerInfo Partner, string Changes)> Reconfigured)
{
    public bool Any => Added.Count + Removed.Count + Reconfigured.Count > 0;

    /// <summary>"partners +gamma -beta; alpha: max_connections 8 -> 16", or "partners unchanged".</summary>
    public override string ToString()
    {
        if (!Any)
        {
            return "partners unchanged";
        }

        List<string> parts = [];
        if (Added.Count + Removed.Count > 0)
        {
            parts.Add("partners " + string.Join(' ', Added.Select(p => "+" + p.Id).Concat(Removed.Select(p => "-" + p.Id))));
        }

        parts.AddRange(Reconfigured.Select(r => $"{r.Partner.Id}: {r.Changes}"));
        return string.Join("; ", parts);
    }
}
