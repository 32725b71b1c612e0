using System.Buffers;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Support.Evidence;

namespace Relayd.Tests.Support.Evidence;

/// <summary>The evidence writer on real files: trees rotate, old trees keep serving, the index's misses are found in the files, retention and the size cap drop oldest first.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class EvidenceStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("relayd-evidence-store-").FullName;
    private readonly EvidenceKey _key = EvidenceKey.Generate();
    private readonly PartnerInfo _alpha = new(new PartnerOptions { Id = "alpha" }, new RelayLimits());
    private readonly PartnerInfo _beta = new(new PartnerOptions { Id = "beta" }, new RelayLimits());

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private EvidenceStore Open(EvidenceOptions options)
    {
        EvidenceStore store = EvidenceStore.Open(options, _dir, "relay-1", _key, TimeProvider.System, NullLogger.Instance);
        store.Start();
        return store;
    }

    private void Accept(EvidenceStore store, int first, int count)
    {
        ReadOnlySequence<byte> user = new("u"u8.ToArray()), cipher = new(new byte[64]);
        for (int i = first; i < first + count; i++)
        {
            store.Recorder.EnvelopeAccepted(new AcceptedEnvelope
            {
                Sender = _alpha, ConnectionId = 1, MessageId = (UInt128)i, Recipient = _beta, SenderUser = user, RecipientUser = user,
                Ciphertext = cipher, FrameBytes = 100, Shard = 0, LogOnly = false, AcceptedAtMs = 1_764_000_000_000 + i,
            });
        }
    }

    private static byte[] Id(int i)
    {
        byte[] id = new byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(id, (UInt128)i);
        return id;
    }

    private async Task<EvidenceAnswer> LookupAsync(EvidenceStore store, int i, string asker = "beta") => await store.LookupAsync(asker, "alpha", Id(i));

    [Fact]
    public async Task Tree_files_and_their_directory_are_kept_from_others_as_the_trace_is()
    {
        // Statements name partners and message ids, and carry user hashes: the relay's user and group only (0640,
        // directory 0750), whatever the umask.
        string dir = Path.Combine(_dir, "evidence");
        await using (EvidenceStore store = EvidenceStore.Open(new EvidenceOptions { MaxTreeLeaves = 16 }, dir, "relay-1", _key, TimeProvider.System, NullLogger.Instance))
        {
            store.Start();
            Accept(store, 0, 40); // two closed trees and an open one
            await store.FlushAsync(TestContext.Current.CancellationToken);
        }

        const UnixFileMode Others = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute, File.GetUnixFileMode(dir));
        string[] trees = Directory.GetFiles(dir, "tree-*.evl");
        Assert.True(trees.Length >= 3, $"{trees.Length} tree files");
        Assert.All(trees, tree => Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(tree) & (Others | UnixFileMode.GroupWrite)));
    }

    [Fact]
    public async Task Trees_rotate_at_max_tree_leaves_and_statements_of_closed_trees_keep_verifying_against_their_final_head()
    {
        await using EvidenceStore store = Open(new EvidenceOptions { MaxTreeLeaves = 16, SignInterval = TimeSpan.FromMilliseconds(20) });
        ulong first = store.CurrentTreeId;
        Accept(store, 0, 50);
        await store.FlushAsync(TestContext.Current.CancellationToken);
        Assert.Equal(first + 3, store.CurrentTreeId); // 50 statements, 16 a tree
        Assert.Equal(4, Directory.GetFiles(_dir, "tree-*.evl").Length);

        var trees = new HashSet<ulong>();
        for (int i = 0; i < 50; i++)
        {
            EvidenceProof proof = Assert.Single((await LookupAsync(store, i)).Proofs);
            Assert.Null(EvidenceVerifier.Verify(proof, _key.PublicKey));
            TreeHeadFields head = EvidenceLayouts.ParseTreeHead(proof.TreeHead.Span, out _)!;
            trees.Add(head.TreeId);
            Assert.Equal((ulong)(i % 16), proof.LeafIndex);
            Assert.True(head.TreeId == store.CurrentTreeId || head.TreeSize == 16, "a closed tree's final head covers all its statements");
        }

        Assert.Equal(4, trees.Count);
        Assert.Empty((await LookupAsync(store, 50)).Proofs);
        Assert.Empty((await LookupAsync(store, 3, asker: "gamma")).Proofs);
    }

    [Fact]
    public async Task Messages_the_index_no_longer_holds_are_found_by_scanning_the_files_for_their_sender_partner()
    {
        await using EvidenceStore store = Open(new EvidenceOptions { IndexCapacity = 1024, MaxTreeLeaves = 700, SignInterval = TimeSpan.FromMilliseconds(20) });
        Accept(store, 0, 3000); // the index keeps the newest 1,793 to 2,048 statements (two per message of its capacity)
        await store.FlushAsync(TestContext.Current.CancellationToken);
        foreach (int i in (int[])[0, 1, 699, 700, 1500, 2999])
        {
            EvidenceProof proof = Assert.Single((await LookupAsync(store, i, asker: "alpha")).Proofs);
            Assert.Null(EvidenceVerifier.Verify(proof, _key.PublicKey));
            Assert.Equal((UInt128)i, EvidenceLayouts.ParseStatement(proof.Statement.Span, out _)!.MessageId);
        }

        // Only the sender's lookups scan (a scan's time would tell others whether the id exists): the recipient gets
        // the index's answer, which no longer has message 0; the newest it still has.
        Assert.Empty((await LookupAsync(store, 0, asker: "beta")).Proofs);
        Assert.Single((await LookupAsync(store, 2999, asker: "beta")).Proofs);
        Assert.Empty((await LookupAsync(store, 0, asker: "gamma")).Proofs);
    }

    [Fact]
    public async Task The_size_cap_and_the_retention_delete_the_oldest_closed_trees_first_and_count_them()
    {
        var options = new EvidenceOptions { MaxTreeLeaves = 1024, MaxBytes = 1 << 20, SignInterval = TimeSpan.FromMilliseconds(20) };
        await using (EvidenceStore store = Open(options))
        {
            Accept(store, 0, 12_000); // about 200 bytes a statement: well over 1 MiB in 12 trees
            await store.FlushAsync(TestContext.Current.CancellationToken);
            long bytes = Directory.GetFiles(_dir, "tree-*.evl").Sum(f => new FileInfo(f).Length);
            Assert.True(store.TreesDeleted > 0, "nothing was deleted");
            Assert.True(bytes <= options.MaxBytes + (1024 * 300), $"{bytes} bytes kept");
            Assert.Empty((await LookupAsync(store, 0)).Proofs); // the oldest are gone
            Assert.Single((await LookupAsync(store, 11_999)).Proofs);
        }

        // Closed trees last written before the retention are deleted at the next start.
        string[] kept = [.. Directory.GetFiles(_dir, "tree-*.evl").Order(StringComparer.Ordinal)];
        File.SetLastWriteTimeUtc(kept[0], DateTime.UtcNow - TimeSpan.FromDays(8));
        await using (EvidenceStore store = Open(options))
        {
            Assert.Equal(1, store.TreesDeleted);
            Assert.False(File.Exists(kept[0]));
            Assert.True(File.Exists(kept[^1]));
        }
    }
}
