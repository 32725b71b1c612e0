using CsCheck;
using Relayd.Support.Evidence;

namespace Relayd.Tests.Support.Evidence;

/// <summary>The evidence index against a model: the newest statements of each kind per key among the last <c>capacity</c> added, nothing older.</summary>
public sealed class StatementIndexTests
{
    // 6000 is rounded up to 8192 and grows from 4096 on the way.
    private static readonly int[] Capacities = [2, 16, 1000, 6000];

    [Fact]
    public void Finds_the_newest_accepted_and_delivery_statement_of_a_key_among_the_last_capacity_added_and_nothing_older()
    {
        string[] partners = ["alpha", "beta", "gamma"];
        Gen<(int Capacity, (int Sender, int Id, bool Delivery, int Recipient)[] Adds)> cases = Gen.Select(
            Gen.Int[0, 3].Select(i => Capacities[i]),
            Gen.Select(Gen.Int[0, 2], Gen.Int[0, 40], Gen.Bool, Gen.Int[0, 2]).Array[0, 12_000]);
        cases.Sample(c =>
        {
            var index = new StatementIndex(c.Capacity);
            int kept = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)c.Capacity);
            for (int i = 0; i < c.Adds.Length; i++)
            {
                var (sender, id, delivery, recipient) = c.Adds[i];
                index.Add(partners[sender], (UInt128)id, delivery ? StatementKind.Delivery : StatementKind.Accepted, partners[recipient], new StatementLocation((ulong)(1 + i / 100), i, 10L * i, 100 + (i % 50)));
            }

            int from = Math.Max(0, c.Adds.Length - kept);
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
