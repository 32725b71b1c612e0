using System.Buffers;

namespace Relayd.Routing;

/// <summary>
/// An immutable snapshot of the approved partners, looked up by id string or by the UTF-8 id of a frame without
/// allocating. A reload builds the next snapshot with <see cref="Next"/>: a partner listed in both keeps its
/// <see cref="PartnerInfo"/> (its queues, message-id index and held receipts), so references to it stay valid.
/// </summary>
internal sealed class PartnerTable
{
    private readonly Dictionary<string, PartnerInfo> _byId;

    private PartnerTable(PartnerInfo[] partners, Dictionary<string, PartnerInfo> byId)
    {
        Partners = partners;
        _byId = byId;
    }

    /// <summary>The partners in the order of the options. Shared: never modify it.</summary>
    public PartnerInfo[] Partners { get; }

    /// <summary>The first snapshot: every partner of <paramref name="options"/> (validated with <see cref="RelayOptions.Validate"/>), in order.</summary>
    /// <exception cref="ArgumentException">The options name a partner twice.</exception>
    public static PartnerTable Create(RelayOptions options) => Build(options, previous: null);

    /// <summary>
    /// The snapshot for <paramref name="options"/> after this one: a partner in both keeps its object as it is here (a
    /// changed setting of it is not applied), one only in <paramref name="options"/> gets a new object
    /// (a partner removed and approved again starts afresh), one only here is left out.
    /// </summary>
    /// <exception cref="ArgumentException">The options name a partner twice.</exception>
    public PartnerTable Next(RelayOptions options) => Build(options, this);

    public PartnerInfo? Find(string id) => _byId.GetValueOrDefault(id);

    /// <summary>Finds a partner by its UTF-8 id. Partners are few: a linear scan beats hashing.</summary>
    public PartnerInfo? Find(ReadOnlySpan<byte> utf8Id)
    {
        foreach (PartnerInfo partner in Partners)
        {
            if (utf8Id.SequenceEqual(partner.IdUtf8))
            {
                return partner;
            }
        }

        return null;
    }

    /// <summary>Finds a partner by its UTF-8 id as it appears in a frame, possibly split across buffers.</summary>
    public PartnerInfo? Find(in ReadOnlySequence<byte> utf8Id)
    {
        if (utf8Id.IsSingleSegment)
        {
            return Find(utf8Id.FirstSpan);
        }

        // Longer than any valid id (63 characters); also bounds the stack buffer.
        if (utf8Id.Length > 256)
        {
            return null;
        }

        Span<byte> id = stackalloc byte[(int)utf8Id.Length];
        utf8Id.CopyTo(id);
        return Find(id);
    }

    private static PartnerTable Build(RelayOptions options, PartnerTable? previous)
    {
        var partners = new PartnerInfo[options.Partners.Count];
        var byId = new Dictionary<string, PartnerInfo>(partners.Length, StringComparer.Ordinal);
        for (int i = 0; i < partners.Length; i++)
        {
            PartnerOptions partner = options.Partners[i];
            PartnerInfo info = previous?.Find(partner.Id) ?? new PartnerInfo(partner, options.Limits, options.Media.MaxBytes, options.Interop);
            if (!byId.TryAdd(info.Id, info))
            {
                throw new ArgumentException($"duplicate partner id '{partner.Id}' (RelayOptions.Validate refuses it)", nameof(options));
            }

            partners[i] = info;
        }

        return new PartnerTable(partners, byId);
    }
}
