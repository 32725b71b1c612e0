using CsCheck;
using Relayd.Support.Evidence;

namespace Relayd.Tests.Support.Evidence;

/// <summary>The evidence index against a model: the newest statements of each kind per key among those its live blocks hold, nothing older.</summary>
public sealed class StatementIndexTests
{
    // 6000 is rounded up to 8192 and grows from 4096 on the way.
    private static readonly int[] Capacities = [2, 16, 1000, 6000];

    [Fact]
    public void Finds_the_newest_accepted_and_delivery_statement_of_a_key_among_those_kept_and_nothing_older()
    {
        string[] partners = ["alpha", "beta", "gamma"];
        Assert.False(new StatementIndex(16).HasAccepted("alpha", 1)); // empty: a relay's first start
        Gen<(int Capacity, (int Sender, int Id, bool Delivery, int Recipient)[] Adds)> cases = Gen.Select(
            Gen.Int[0, 3].Select(i => Capacities[i]),
            Gen.Select(Gen.Int[0, 2], Gen.Int[0, 40], Gen.Bool, Gen.Int[0, 2]).Array[0, 12_000]);
        cases.Sample(c =>
        {
            var index = new StatementIndex(c.Capacity);
            int capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)c.Capacity);
            int block = Math.Max(1, capacity / 8), blocks = capacity / block;
            for (int i = 0; i < c.Adds.Length; i++)
            {
                var (sender, id, delivery, recipient) = c.Adds[i];
                index.Add(partners[sender], (UInt128)id, delivery ? StatementKind.Delivery : StatementKind.Accepted, partners[recipient], new StatementLocation((ulong)(1 + i / 100), i, 10L * i, 100 + (i % 50)));
            }

            // Kept: the newest block (partly written) and the blocks-1 before it; the ones before are dropped whole.
            int from = c.Adds.Length == 0 ? 0 : Math.Max(0, ((c.Adds.Length - 1) / block - blocks + 1) * block);
            Assert.True(c.Adds.Length - from >= Math.Min(c.Adds.Length, capacity - block + 1), "keeps at least 7/8 of its capacity");
            Assert.Equal(c.Adds.Length - from, index.Count);
            for (int sender = 0; sender < partners.Length; sender++)
            {
                for (int id = 0; id <= 40; id++)
                {
                    int accepted = -1, delivered = -1;
                    for (int i = c.Adds.Length - 1; i >= from; i--)
                    {
                        if (c.Adds[i].Sender == sender && c.Adds[i].Id == id)
                        {
                            if (c.Adds[i].Delivery && delivered < 0) delivered = i;
                            if (!c.Adds[i].Delivery && accepted < 0) accepted = i;
                        }
                    }

                    bool found = index.TryFind(partners[sender], (UInt128)id, out StatementLocation a, out StatementLocation d, out string? recipient);
                    Assert.Equal(accepted >= 0 || delivered >= 0, found);
                    Assert.Equal(accepted, a.TreeId == 0 ? -1 : (int)a.Leaf);
                    Assert.Equal(delivered, d.TreeId == 0 ? -1 : (int)d.Leaf);
                    if (accepted >= 0)
                    {
                        Assert.Equal(new StatementLocation((ulong)(1 + accepted / 100), accepted, 10L * accepted, 100 + (accepted % 50)), a);
                    }

                    int newest = Math.Max(accepted, delivered);
                    Assert.Equal(newest >= 0 ? partners[c.Adds[newest].Recipient] : null, recipient);
                    Assert.Equal(accepted >= 0, index.HasAccepted(partners[sender], (UInt128)id));
                }
            }
        }, iter: 60);
    }
}
