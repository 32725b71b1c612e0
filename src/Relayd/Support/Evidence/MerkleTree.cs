using System.Numerics;
using System.Security.Cryptography;

namespace Relayd.Support.Evidence;

/// <summary>
/// An append-only Merkle tree as in RFC 9162 (Certificate Transparency v2) section 2.1: leaf hash =
/// SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right). Keeps every complete subtree's hash, level by
/// level (about 2 x 32 bytes per leaf), so a root, an inclusion proof or a consistency proof costs O(log^2 n) hashes.
/// </summary>
/// <remarks>Not thread-safe: the evidence writer mutates it, readers take the owner's lock.</remarks>
internal sealed class MerkleTree
{
    public const int HashBytes = 32;

    // _levels[k] holds the hashes of the complete subtrees of 2^k leaves, left to right, packed (no object per hash).
    private readonly List<HashColumn> _levels = [new()];

    public long Size => _levels[0].Count;

    public static byte[] LeafHash(ReadOnlySpan<byte> leaf)
    {
        byte[] hash = new byte[HashBytes];
        LeafHash(leaf, hash);
        return hash;
    }

    public static void LeafHash(ReadOnlySpan<byte> leaf, Span<byte> destination)
    {
        // Statements are a few hundred bytes: one hash call over a stack copy (the evidence writer hashes every
        // statement, and every one again when a tree is read back).
        byte[]? rented = null;
        Span<byte> input = leaf.Length < 1024 ? stackalloc byte[1024] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(1 + leaf.Length));
        input[0] = 0x00;
        leaf.CopyTo(input[1..]);
        Sha256.Hash(input[..(1 + leaf.Length)], destination);
        if (rented is not null)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public static byte[] NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        byte[] hash = new byte[HashBytes];
        NodeHash(left, right, hash);
        return hash;
    }

    public static void NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right, Span<byte> destination)
    {
        Span<byte> input = stackalloc byte[1 + 2 * HashBytes];
        input[0] = 0x01;
        left.CopyTo(input[1..]);
        right.CopyTo(input[(1 + HashBytes)..]);
        Sha256.Hash(input, destination);
    }

    /// <summary>Appends a leaf (its statement bytes); returns its index.</summary>
    public long Append(ReadOnlySpan<byte> leaf)
    {
        Span<byte> hash = stackalloc byte[HashBytes];
        LeafHash(leaf, hash);
        return AppendLeafHash(hash);
    }

    /// <summary>Appends a leaf by its hash, and the hash of every subtree it completes; returns its index. Allocates only when a column grows a chunk.</summary>
    public long AppendLeafHash(ReadOnlySpan<byte> leafHash)
    {
        long index = Size;
        _levels[0].Add(leafHash);
        Span<byte> node = stackalloc byte[HashBytes];
        for (int level = 0; _levels[level].Count % 2 == 0; level++)
        {
            if (level + 1 == _levels.Count)
            {
                _levels.Add(new());
            }

            HashColumn nodes = _levels[level];
            NodeHash(nodes[nodes.Count - 2], nodes[nodes.Count - 1], node);
            _levels[level + 1].Add(node);
        }

        return index;
    }

    /// <summary>The root of the first <paramref name="size"/> leaves (MTH(D[0:size])); SHA-256 of nothing for 0.</summary>
    public byte[] Root(long size)
    {
        CheckSize(size);
        return size == 0 ? SHA256.HashData([]) : Subtree(0, size);
    }

    /// <summary>The audit path of leaf <paramref name="index"/> in the tree of <paramref name="size"/> leaves (RFC 9162 2.1.3.1), leaf side first.</summary>
    public List<byte[]> InclusionProof(long index, long size)
    {
        CheckSize(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, size);
        var path = new List<byte[]>();
        Path(index, 0, size, path);
        return path;
    }

    /// <summary>The consistency proof from the tree of <paramref name="oldSize"/> leaves to <paramref name="newSize"/> (RFC 9162 2.1.4.1).</summary>
    public List<byte[]> ConsistencyProof(long oldSize, long newSize)
    {
        CheckSize(newSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(oldSize, newSize);
        var proof = new List<byte[]>();
        if (oldSize > 0 && oldSize < newSize)
        {
            SubProof(oldSize, 0, newSize, true, proof);
        }

        return proof;
    }

    private void Path(long m, long start, long n, List<byte[]> path)
    {
        if (n <= 1)
        {
            return;
        }

        long k = LargestPowerOfTwoBelow(n);
        if (m < k)
        {
            Path(m, start, k, path);
            path.Add(Subtree(start + k, n - k));
        }
        else
        {
            Path(m - k, start + k, n - k, path);
            path.Add(Subtree(start, k));
        }
    }

    private void SubProof(long m, long start, long n, bool complete, List<byte[]> proof)
    {
        if (m == n)
        {
            if (!complete)
            {
                proof.Add(Subtree(start, n));
            }

            return;
        }

        long k = LargestPowerOfTwoBelow(n);
        if (m <= k)
        {
            SubProof(m, start, k, complete, proof);
            proof.Add(Subtree(start + k, n - k));
        }
        else
        {
            SubProof(m - k, start + k, n - k, false, proof);
            proof.Add(Subtree(start, k));
        }
    }

    // MTH(D[start:start+n]); a complete aligned subtree is read from its level, anything else split as RFC 9162 does.
    private byte[] Subtree(long start, long n)
    {
        if (BitOperations.IsPow2(n) && start % n == 0)
        {
            int level = BitOperations.Log2((ulong)n);
            return _levels[level][start / n].ToArray();
        }

        long k = LargestPowerOfTwoBelow(n);
        return NodeHash(Subtree(start, k), Subtree(start + k, n - k));
    }

    private void CheckSize(long size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, Size);
    }

    /// <summary>The largest power of two smaller than <paramref name="n"/> (n &gt; 1).</summary>
    public static long LargestPowerOfTwoBelow(long n) => 1L << BitOperations.Log2((ulong)(n - 1));

    /// <summary>RFC 9162 2.1.3.2: whether <paramref name="path"/> proves leaf <paramref name="index"/> with <paramref name="leafHash"/> under <paramref name="root"/> of a tree of <paramref name="size"/>.</summary>
    public static bool VerifyInclusion(long index, long size, ReadOnlySpan<byte> leafHash, IReadOnlyList<byte[]> path, ReadOnlySpan<byte> root)
    {
        if (index < 0 || index >= size)
        {
            return false;
        }

        long fn = index, sn = size - 1;
        byte[] r = leafHash.ToArray();
        foreach (byte[] p in path)
        {
            if (p.Length != HashBytes || sn == 0)
            {
                return false;
            }

            if ((fn & 1) == 1 || fn == sn)
            {
                r = NodeHash(p, r);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                r = NodeHash(r, p);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && r.AsSpan().SequenceEqual(root);
    }

    /// <summary>RFC 9162 2.1.4.2: whether <paramref name="proof"/> shows the tree of <paramref name="oldSize"/> (root <paramref name="oldRoot"/>) is a prefix of the one of <paramref name="newSize"/>.</summary>
    public static bool VerifyConsistency(long oldSize, long newSize, ReadOnlySpan<byte> oldRoot, ReadOnlySpan<byte> newRoot, IReadOnlyList<byte[]> proof)
    {
        if (oldSize <= 0 || oldSize > newSize)
        {
            return false;
        }

        if (oldSize == newSize)
        {
            return proof.Count == 0 && oldRoot.SequenceEqual(newRoot);
        }

        List<byte[]> path = [.. proof];
        if (BitOperations.IsPow2((ulong)oldSize))
        {
            path.Insert(0, oldRoot.ToArray());
        }

        if (path.Count == 0 || path.Any(p => p.Length != HashBytes))
        {
            return false;
        }

        long fn = oldSize - 1, sn = newSize - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        byte[] fr = path[0], sr = path[0];
        foreach (byte[] c in path.Skip(1))
        {
            if (sn == 0)
            {
                return false;
            }

            if ((fn & 1) == 1 || fn == sn)
            {
                fr = NodeHash(c, fr);
                sr = NodeHash(c, sr);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                sr = NodeHash(sr, c);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && fr.AsSpan().SequenceEqual(oldRoot) && sr.AsSpan().SequenceEqual(newRoot);
    }

    /// <summary>32-byte hashes appended in order, packed in chunks of 1,024 (32 KiB each: under the large-object heap).</summary>
    private sealed class HashColumn
    {
        private const int ChunkHashes = 1024;
        private readonly List<byte[]> _chunks = [];

        public long Count { get; private set; }

        public ReadOnlySpan<byte> this[long index] => _chunks[(int)(index / ChunkHashes)].AsSpan((int)(index % ChunkHashes) * HashBytes, HashBytes);

        public void Add(ReadOnlySpan<byte> hash)
        {
            int offset = (int)(Count % ChunkHashes);
            if (offset == 0)
            {
                _chunks.Add(new byte[ChunkHashes * HashBytes]);
            }

            hash[..HashBytes].CopyTo(_chunks[^1].AsSpan(offset * HashBytes));
            Count++;
        }
    }
}
