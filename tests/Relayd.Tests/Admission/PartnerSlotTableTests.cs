using Relayd.Admission;
using Relayd.Routing;

namespace Relayd.Tests.Admission;

/// <summary>The per-partner lookup the rate limiter and admission rules use: every partner's value found, memory linear in the partners.</summary>
public sealed class PartnerSlotTableTests
{
    [Fact]
    public void Adding_many_partners_keeps_each_value_and_grows_the_table_linearly()
    {
        // relayd dev with 32 partners was OOM-killed at 24 GB: each add doubled the array even when the slot fitted,
        // so 32 partners meant about 2^32 slots (found by bench/scaling.sh, --partners 32).
        PartnerInfo[] partners = [.. Enumerable.Range(0, 24).Select(i => new PartnerInfo(new PartnerOptions { Id = $"p{i}" }, new RelayLimits()))];
        var table = new PartnerSlotTable<string>();
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (PartnerInfo partner in partners)
        {
            Assert.Equal(partner.Id, table.GetOrAdd(partner, p => p.Id));
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.All(partners, p => Assert.Equal(p.Id, table.Find(p)));
        Assert.Equal("p7", table.Add(partners[7], "other")); // an existing value is kept
        // Slots are process-wide (other tests' partners take them too): allow for that, not for doubling per add (24 adds
        // doubling an 8-slot array reach 2^27 slots: a gigabyte, not an OOM kill of the test host as 32 would).
        Assert.True(allocated < 8 * 1024 * 1024, $"{allocated:N0} bytes allocated for {partners.Length} partners");
    }
}
