using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>The backlog of every recipient partner, for <see cref="StorageMetrics"/>.</summary>
internal static class MailboxBacklog
{
    public static IReadOnlyList<PartnerBacklog> Capture(PartnerDirectory partners) =>
        [.. partners.Partners.Select(p => new PartnerBacklog(p.Id, p.Mailbox.Shards.Sum(s => (long)s.Count), p.Mailbox.Shards.Sum(s => (long)s.SpilledCount)))];
}
