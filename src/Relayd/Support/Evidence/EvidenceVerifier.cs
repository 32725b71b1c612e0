using Relayd.Protocol.V1;

namespace Relayd.Support.Evidence;

/// <summary>
/// Checks an <see cref="EvidenceProof"/> on its own, with nothing but the relay's public key: the tree head's Ed25519
/// signature, the statement's layout, and the audit path from the statement's leaf hash to the head's root.
/// What <c>relayd evidence verify</c> runs; docs/evidence.md shows the same checks with openssl and Python.
/// </summary>
internal static class EvidenceVerifier
{
    /// <summary>Null when the proof holds; else what failed, in one sentence.</summary>
    public static string? Verify(EvidenceProof proof, ReadOnlySpan<byte> publicKey)
    {
        byte[] head = proof.TreeHead.ToByteArray();
        if (!EvidenceKey.Verify(publicKey, head, proof.TreeHeadSignature.Span))
        {
            return "the tree head's signature does not verify with this public key (the head was altered, or it was signed by another key)";
        }

        if (EvidenceLayouts.ParseTreeHead(head, out string? headProblem) is not { } fields)
        {
            return headProblem;
        }

        if ((long)proof.TreeSize != fields.TreeSize)
        {
            return $"the proof's tree_size {proof.TreeSize} is not the signed tree head's {fields.TreeSize}";
        }

        if (EvidenceLayouts.ParseStatement(proof.Statement.Span, out string? statementProblem) is null)
        {
            return "the statement is malformed: " + statementProblem;
        }

        byte[] leafHash = MerkleTree.LeafHash(proof.Statement.Span);
        List<byte[]> path = [.. proof.AuditPath.Select(p => p.ToByteArray())];
        return MerkleTree.VerifyInclusion((long)proof.LeafIndex, fields.TreeSize, leafHash, path, fields.RootHash) ? null
            : $"the audit path does not lead from the statement (leaf {proof.LeafIndex}) to the signed root of tree {fields.TreeId} (size {fields.TreeSize}): the statement or the path was altered";
    }
}
