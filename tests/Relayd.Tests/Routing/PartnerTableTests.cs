using System.Buffers;
using System.Text;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Routing;

/// <summary>
/// The approved partners are an immutable snapshot that a reload replaces at once: a partner in both keeps its
/// object (its queues, message-id index and held receipts), a removed one is no longer found, an added one is.
/// </summary>
public sealed class PartnerTableTests
{
    [Fact]
    public void A_replaced_snapshot_keeps_the_objects_of_the_partners_in_both()
    {
        var directory = new PartnerDirectory(Options("alpha", "beta"));
        PartnerTable before = directory.Current;
        PartnerInfo alpha = directory.Find("alpha")!;
        PartnerInfo beta = directory.Find("beta")!;

        PartnerTable after = directory.Replace(Options("gamma", "alpha"));

        Assert.Same(after, directory.Current);
        Assert.Same(alpha, directory.Find("alpha"));
        Assert.Same(alpha, directory.Find(Utf8("alpha")));
        Assert.Null(directory.Find("beta"));
        Assert.Null(directory.Find(Utf8("beta")));
        PartnerInfo gamma = Assert.IsType<PartnerInfo>(directory.Find("gamma"));
        Assert.Same(gamma, directory.Find(Utf8("gamma")));
        Assert.Equal(["gamma", "alpha"], directory.Partners.Select(p => p.Id));

        // The old snapshot is unchanged: whoever still holds it sees the partners as they were.
        Assert.Same(beta, before.Find("beta"));
        Assert.Null(before.Find("gamma"));
        Assert.Equal(["alpha", "beta"], before.Partners.Select(p => p.Id));
    }

    [Fact]
    public void A_partner_removed_and_approved_again_starts_afresh()
    {
        var directory = new PartnerDirectory(Options("alpha", "beta"));
        PartnerInfo alpha = directory.Find("alpha")!;
        PartnerInfo beta = directory.Find("beta")!;

        directory.Replace(Options("alpha"));
        directory.Replace(Options("alpha", "beta", "gamma"));

        Assert.Same(alpha, directory.Find("alpha"));
        Assert.NotSame(beta, directory.Find("beta")); // its queues, dedup index and held receipts went with its removal
        Assert.Equal(["alpha", "beta", "gamma"], directory.Partners.Select(p => p.Id));
    }

    [Fact]
    public void A_utf8_id_split_across_buffers_is_found_and_an_unknown_or_oversized_one_is_not()
    {
        var directory = new PartnerDirectory(Options("alpha", "beta"));
        ReadOnlySequence<byte> split = SegmentedSequence.Of(Encoding.UTF8.GetBytes("beta"), chunkSize: 2);

        Assert.False(split.IsSingleSegment);
        Assert.Same(directory.Find("beta"), directory.Find(split));
        Assert.Null(directory.Find(Utf8("bet")));
        Assert.Null(directory.Find(Utf8(new string('a', 300))));
    }

    [Fact]
    public void A_table_refuses_options_that_name_a_partner_twice()
    {
        ArgumentException refused = Assert.Throws<ArgumentException>(() => new PartnerDirectory(Options("alpha", "alpha")));

        Assert.Contains("duplicate partner id 'alpha'", refused.Message, StringComparison.Ordinal);
    }

    private static RelayOptions Options(params string[] ids)
    {
        var options = new RelayOptions();
        options.Limits.ShardCount = 2;
        foreach (string id in ids)
        {
            options.Partners.Add(new PartnerOptions { Id = id });
        }

        return options;
    }

    private static ReadOnlySequence<byte> Utf8(string id) => new(Encoding.UTF8.GetBytes(id));
}
