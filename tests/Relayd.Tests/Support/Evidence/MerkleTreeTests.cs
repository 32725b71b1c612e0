using System.Security.Cryptography;
using CsCheck;
using Google.Protobuf;
using Relayd.Protocol.V1;
using Relayd.Support.Evidence;

namespace Relayd.Tests.Support.Evidence;

/// <summary>The RFC 9162 tree: roots and proofs against the RFC's recursive definitions, and proofs that fail when altered.</summary>
public sealed class MerkleTreeTests
{
    // MTH straight from RFC 9162 section 2.1.1, independent of the tree's stored levels.
    private static byte[] Mth(IReadOnlyList<byte[]> leaves, int start, int n)
    {
        if (n == 0)
        {
            return SHA256.HashData([]);
        }

        if (n == 1)
        {
            return SHA256.HashData([0x00, .. leaves[start]]);
        }

        int k = 1;
        while (k * 2 < n)
        {
            k *= 2;
        }

        return SHA256.HashData([0x01, .. Mth(leaves, start, k), .. Mth(leaves, start + k, n - k)]);
    }

    private static (MerkleTree Tree, List<byte[]> Leaves) Build(int n)
    {
        var tree = new MerkleTree();
        var leaves = new List<byte[]>();
        for (int i = 0; i < n; i++)
        {
            byte[] leaf = BitConverter.GetBytes(i * 7919);
            leaves.Add(leaf);
            tree.Append(leaf);
        }

        return (tree, leaves);
    }

    [Fact]
    public void Roots_inclusion_and_consistency_proofs_match_the_RFC_definitions_for_every_size()
    {
        Gen.Int[1, 70].Select(Gen.Int[0, 69], Gen.Int[1, 70]).Sample((n, index, old) =>
        {
            (MerkleTree tree, List<byte[]> leaves) = Build(n);
            byte[] root = tree.Root(n);
            Assert.Equal(Mth(leaves, 0, n), root);
            int m = index % n;
            Assert.True(MerkleTree.VerifyInclusion(m, n, MerkleTree.LeafHash(leaves[m]), tree.InclusionProof(m, n), root));
            int oldSize = Math.Min(old, n);
            Assert.True(MerkleTree.VerifyConsistency(oldSize, n, tree.Root(oldSize), root, tree.ConsistencyProof(oldSize, n)));
        });
    }

    [Fact]
    public void A_flipped_bit_in_the_leaf_the_path_or_the_root_fails_inclusion_and_consistency()
    {
        (MerkleTree tree, List<byte[]> leaves) = Build(13);
        byte[] root = tree.Root(13);
        List<byte[]> path = tree.InclusionProof(5, 13);
        byte[] leafHash = MerkleTree.LeafHash(leaves[5]);
        Assert.True(MerkleTree.VerifyInclusion(5, 13, leafHash, path, root));
        Assert.False(MerkleTree.VerifyInclusion(5, 13, MerkleTree.LeafHash([.. leaves[5], 0]), path, root));
        Assert.False(MerkleTree.VerifyInclusion(6, 13, leafHash, path, root));
        for (int i = 0; i < path.Count; i++)
        {
            List<byte[]> altered = [.. path.Select(p => (byte[])p.Clone())];
            altered[i][3] ^= 0x10;
            Assert.False(MerkleTree.VerifyInclusion(5, 13, leafHash, altered, root));
        }

        byte[] otherRoot = (byte[])root.Clone();
        otherRoot[0] ^= 1;
        Assert.False(MerkleTree.VerifyInclusion(5, 13, leafHash, path, otherRoot));
        Assert.False(MerkleTree.VerifyConsistency(7, 13, tree.Root(7), otherRoot, tree.ConsistencyProof(7, 13)));
    }

    [Fact]
    public void A_proof_verifies_offline_and_a_flipped_bit_in_the_statement_the_path_or_the_tree_head_is_named()
    {
        EvidenceKey key = EvidenceKey.Generate();
        var tree = new MerkleTree();
        byte[] statement = EvidenceLayouts.Accepted("relay-1", "alpha", EvidenceLayouts.UserHash("alpha", "alice"u8), "beta", EvidenceLayouts.UserHash("beta", "bob"u8), 42, SHA256.HashData("ciphertext"u8), 1_764_000_000_000);
        for (int i = 0; i < 9; i++)
        {
            tree.Append(i == 6 ? statement : EvidenceLayouts.Delivery("relay-1", "alpha", "beta", (UInt128)i, DeliveryStatus.Acknowledged, 1, 2));
        }

        byte[] head = EvidenceLayouts.TreeHead("relay-1", 1, 9, 1_764_000_001_000, tree.Root(9));
        var proof = new EvidenceProof { Statement = ByteString.CopyFrom(statement), LeafIndex = 6, TreeSize = 9, TreeHead = ByteString.CopyFrom(head), TreeHeadSignature = ByteString.CopyFrom(key.Sign(head)) };
        proof.AuditPath.AddRange(tree.InclusionProof(6, 9).Select(ByteString.CopyFrom));
        Assert.Null(EvidenceVerifier.Verify(proof, key.PublicKey));
        Assert.Equal("alpha", EvidenceLayouts.ParseStatement(statement, out _)!.SenderPartner);

        static ByteString Flip(ByteString bytes, int at)
        {
            byte[] b = bytes.ToByteArray();
            b[at] ^= 0x01;
            return ByteString.CopyFrom(b);
        }

        EvidenceProof flippedStatement = proof.Clone();
        flippedStatement.Statement = Flip(proof.Statement, 40);
        Assert.Contains("audit path", EvidenceVerifier.Verify(flippedStatement, key.PublicKey), StringComparison.Ordinal);

        EvidenceProof flippedPath = proof.Clone();
        flippedPath.AuditPath[1] = Flip(proof.AuditPath[1], 0);
        Assert.Contains("audit path", EvidenceVerifier.Verify(flippedPath, key.PublicKey), StringComparison.Ordinal);

        EvidenceProof flippedHead = proof.Clone();
        flippedHead.TreeHead = Flip(proof.TreeHead, head.Length - 1);
        Assert.Contains("signature", EvidenceVerifier.Verify(flippedHead, key.PublicKey), StringComparison.Ordinal);

        Assert.Contains("signature", EvidenceVerifier.Verify(proof, EvidenceKey.Generate().PublicKey), StringComparison.Ordinal);
    }
}
