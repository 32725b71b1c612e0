using System.Buffers.Binary;

namespace Relayd.Support.Evidence;

/// <summary>A signed tree head: its exact bytes (<see cref="EvidenceLayouts.TreeHead"/>), its signature, and the fields a proof needs.</summary>
internal sealed record SignedHead(long Size, long TimestampMs, byte[] Head, byte[] Signature);

/// <summary>One statement in a tree file: where its bytes are, and its RFC 9162 leaf hash.</summary>
internal readonly record struct LeafRecord(long Offset, int Length, byte[] LeafHash);

/// <summary>
/// One Merkle tree's file, <c>tree-&lt;id&gt;.evl</c> under the evidence directory (docs/evidence.md, "Files"): a
/// header, then records in the order they were made: statements (with their leaf hash, which also tells a torn
/// record from a whole one) and signed heads. Append-only; a reader stops at the first record that is not whole.
/// </summary>
/// <remarks>
/// Header: "RLYDEV01" | tree_id u64 | created_ms u64. Statement record: 0x01 | u16 length | statement | leaf_hash 32.
/// Head record: 0x02 | u16 length | tree head | signature 64. Big-endian.
/// </remarks>
internal static class EvidenceTreeFile
{
    public const int HeaderBytes = 24;
    private const byte StatementRecord = 1;
    private const byte HeadRecord = 2;
    private static ReadOnlySpan<byte> Magic => "RLYDEV01"u8;

    public static string NameOf(ulong treeId) => $"tree-{treeId:D12}.evl";

    /// <summary>The tree id in a file name made by <see cref="NameOf"/>; null for any other file.</summary>
    public static ulong? IdOf(string fileName) =>
        fileName.StartsWith("tree-", StringComparison.Ordinal) && fileName.EndsWith(".evl", StringComparison.Ordinal)
        && ulong.TryParse(fileName.AsSpan(5, fileName.Length - 9), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong id) ? id : null;

    public static byte[] Header(ulong treeId, long createdMs)
    {
        byte[] header = new byte[HeaderBytes];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), treeId);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(16), createdMs);
        return header;
    }

    /// <summary>Writes a statement record; returns the offset of the statement's bytes in the file.</summary>
    public static long WriteStatement(Stream file, ReadOnlySpan<byte> statement, ReadOnlySpan<byte> leafHash)
    {
        Span<byte> prefix = stackalloc byte[3];
        prefix[0] = StatementRecord;
        BinaryPrimitives.WriteUInt16BigEndian(prefix[1..], checked((ushort)statement.Length));
        file.Write(prefix);
        long offset = file.Position;
        file.Write(statement);
        file.Write(leafHash);
        return offset;
    }

    public static void WriteHead(Stream file, SignedHead head)
    {
        Span<byte> prefix = stackalloc byte[3];
        prefix[0] = HeadRecord;
        BinaryPrimitives.WriteUInt16BigEndian(prefix[1..], checked((ushort)head.Head.Length));
        file.Write(prefix);
        file.Write(head.Head);
        file.Write(head.Signature);
    }

    /// <summary>What a tree file holds, up to its first record that is not whole (<see cref="Contents.WholeBytes"/>).</summary>
    internal sealed class Contents
    {
        /// <summary>The whole file as read (statements are read from it by their offsets).</summary>
        public required byte[] Bytes { get; init; }
        public ulong TreeId { get; init; }
        public long CreatedMs { get; init; }
        public List<LeafRecord> Leaves { get; } = [];
        public List<SignedHead> Heads { get; } = [];
        public long WholeBytes { get; set; }
    }

    /// <summary>Reads a tree file; null when it has no whole header (not a tree file, or created and never written).</summary>
    public static Contents? Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderBytes || !bytes.AsSpan(0, 8).SequenceEqual(Magic))
        {
            return null;
        }

        var contents = new Contents { Bytes = bytes, TreeId = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(8)), CreatedMs = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(16)) };
        int at = HeaderBytes;
        while (at + 3 <= bytes.Length)
        {
            byte type = bytes[at];
            int length = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at + 1));
            int body = at + 3;
            if (type == StatementRecord && body + length + MerkleTree.HashBytes <= bytes.Length)
            {
                ReadOnlySpan<byte> statement = bytes.AsSpan(body, length);
                byte[] leafHash = MerkleTree.LeafHash(statement);
                if (!leafHash.AsSpan().SequenceEqual(bytes.AsSpan(body + length, MerkleTree.HashBytes)))
                {
                    break; // torn or damaged: nothing after it is trusted
                }

                contents.Leaves.Add(new LeafRecord(body, length, leafHash));

                at = body + length + MerkleTree.HashBytes;
            }
            else if (type == HeadRecord && body + length + 64 <= bytes.Length
                && EvidenceLayouts.ParseTreeHead(bytes.AsSpan(body, length), out _) is { } fields)
            {
                contents.Heads.Add(new SignedHead(fields.TreeSize, fields.TimestampMs, bytes.AsSpan(body, length).ToArray(), bytes.AsSpan(body + length, 64).ToArray()));
                at = body + length + 64;
            }
            else
            {
                break;
            }
        }

        contents.WholeBytes = at;
        return contents;
    }

    /// <summary>The statement's bytes at <paramref name="offset"/> (from <see cref="WriteStatement"/>).</summary>
    public static byte[] ReadStatement(string path, long offset, int length)
    {
        using Microsoft.Win32.SafeHandles.SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        byte[] statement = new byte[length];
        int read = 0;
        while (read < length)
        {
            int n = RandomAccess.Read(handle, statement.AsSpan(read), offset + read);
            if (n == 0)
            {
                throw new EndOfStreamException($"{path}: the statement at {offset} is cut short");
            }

            read += n;
        }

        return statement;
    }
}
