using System.Buffers;

namespace Relayd.Routing;

/// <summary>The approved partners, looked up by id without allocating.</summary>
internal sealed class PartnerDirectory
{
    private readonly Dictionary<string, PartnerInfo> _byId;

    public PartnerDirectory(RelayOptions options)
    {
        var partners = new PartnerInfo[options.Partners.Count];
        for (int i = 0; i < partners.Length; i++)
        {
            partners[i] = new PartnerInfo(i, options.Partners[i], options.Limits);
        }

        Partners = partners;
        _byId = partners.ToDictionary(p => p.Id, StringComparer.Ordinal);
    }

    public PartnerInfo[] Partners { get; }

    public PartnerInfo? Find(string id) => _byId.GetValueOrDefault(id);

    /// <summary>Finds a partner by its UTF-8 id as it appears in a frame. Partners are few: a linear scan beats hashing.</summary>
    public PartnerInfo? Find(in ReadOnlySequence<byte> utf8Id)
    {
        if (utf8Id.Length > 256)
        {
            return null;
        }

        Span<byte> id = stackalloc byte[(int)utf8Id.Length];
        utf8Id.CopyTo(id);
        foreach (PartnerInfo partner in Partners)
        {
            if (id.SequenceEqual(partner.IdUtf8))
            {
                return partner;
            }
        }

        return null;
    }
}
