using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>The approved partners' dedup indexes, as the store saves and restores them.</summary>
internal sealed class PartnerDedupIndexes(PartnerDirectory partners) : IDedupIndexes
{
    public IEnumerable<SenderDedup> All => partners.Partners.Select(p => new SenderDedup(p.IdUtf8, p.Idempotency));

    public IdempotencyIndex? Find(string partnerId) => partners.Find(partnerId)?.Idempotency;
}
