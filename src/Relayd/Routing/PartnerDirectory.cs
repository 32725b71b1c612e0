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
    /// Makes the partners of <paramref name="options"/> (validated) the approved ones, keeping the object of every
    /// partner already approved (see <see cref="PartnerTable.Next"/>); returns the new snapshot.
    /// </summary>
    /// <exception cref="ArgumentException">The options name a partner twice.</exception>
    public PartnerTable Replace(RelayOptions options)
    {
        while (true)
        {
            // Built from the snapshot it replaces, so a concurrent replacement cannot drop a kept partner's object.
            PartnerTable current = Current;
            PartnerTable next = current.Next(options);
            if (Interlocked.CompareExchange(ref _current, next, current) == current)
            {
                return next;
            }
        }
    }
}
