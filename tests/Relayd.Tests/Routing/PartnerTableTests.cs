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

        directory.Replace(Options("gamma", "alpha"));
        PartnerTable after = directory.Current;

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
    public void A_kept_partner_takes_the_reloaded_settings()
    {
        var directory = new PartnerDirectory(Options("alpha", "beta"));
        PartnerInfo alpha = directory.Find("alpha")!;
        RelayOptions reloaded = Options("alpha", "beta");
        reloaded.Partners[0].MaxConnections = 3;
        reloaded.Partners[0].AcceptedKinds.Add(Relayd.Protocol.V1.ContentKind.Text);
        reloaded.Partners[0].MaxMediaBytes = 1024;

        directory.Replace(reloaded);

        Assert.Same(alpha, directory.Find("alpha"));
        Assert.Equal(3, alpha.MaxConnections);
        Assert.Equal([Relayd.Protocol.V1.ContentKind.Text], alpha.AcceptedKinds);
        Assert.True(alpha.Accepts((int)Relayd.Protocol.V1.ContentKind.Text));
        Assert.False(alpha.Accepts((int)Relayd.Protocol.V1.ContentKind.Image));
    }

    [Fact]
    public void A_replacement_reports_what_changed_and_retires_the_removed_partners()
    {
        var directory = new PartnerDirectory(Options("alpha", "beta"));
        PartnerInfo beta = directory.Find("beta")!;
        RelayOptions reloaded = Options("alpha", "gamma");
        reloaded.Partners[0].MaxConnections = 3;

        PartnerChanges changes = directory.Replace(reloaded);

        Assert.Equal(["gamma"], changes.Added.Select(p => p.Id));
        Assert.Equal([beta], changes.Removed);
        Assert.True(beta.IsRetired);
        Assert.False(directory.Find("alpha")!.IsRetired);
        Assert.Equal("partners +gamma -beta; alpha: max_connections 16 -> 3", changes.ToString());
        Assert.Equal("partners unchanged", directory.Replace(reloaded).ToString());
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
