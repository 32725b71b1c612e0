using System.Buffers.Binary;
using System.Numerics;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;

namespace Relayd.Support.Evidence;

/// <summary>Where a statement is: its tree (0: none), leaf index, and bytes in the tree's file.</summary>
internal readonly record struct StatementLocation(ulong TreeId, long Leaf, long Offset, int Length);

/// <summary>
/// The newest statements' locations by (sender partner, message id): what answers a proof request without reading
/// the files. Packed 40-byte entries in the order the statements were written, in at least 8 blocks of up to 65,536
/// with a chained hash table each; when all blocks are full the oldest block is cleared and reused, so the oldest
/// statements leave a block at a time (the index keeps between 7/8 of its capacity and all of it).
/// </summary>
/// <remarks>
/// Why not a dictionary: the writer adds two statements per message at 100k+ messages a second, and a
/// <see cref="Dictionary{TKey, TValue}"/> of a million entries of ~110 bytes (key, two locations, recipient) took 11%
/// of the relay's CPU under load (perf, bench/README.md "Evidence"): a cache miss to find, one to move between its two
/// generations, one to insert. Here adding is one write at the end of the newest block and one update of that block's
/// table (256 KiB: stays in cache), nothing is removed, and nothing is rehashed; a lookup probes each block (32 at the
/// default capacity), which requests are rare enough to afford. Blocks are allocated as they are first needed.
/// Keys are hashed with a random per-process seed (seeded xxHash3) so a partner cannot aim ids at one chain; a hash
/// match is a candidate only: the caller checks the statement itself (<see cref="EvidenceLayouts.IsAbout"/>).
/// Not thread-safe: the owner's lock. Hand-written: no served package has a bounded, insertion-ordered multimap of
/// this shape.
/// </remarks>
internal sealed class StatementIndex
{
    private const int MaxBlockEntries = 1 << 16;
    private static readonly long Seed = BinaryPrimitives.ReadInt64LittleEndian(RandomNumberGenerator.GetBytes(8));

    private readonly int _blockEntries;
    private readonly Block[] _blocks;
    private readonly Dictionary<string, ushort> _partnerIds = new(StringComparer.Ordinal);
    private readonly List<string> _partners = [];
    private long _written; // statements ever added

    /// <param name="capacity">Statements kept (two per message), rounded up to a power of two.</param>
    public StatementIndex(int capacity)
    {
        int entries = (int)Math.Min(BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, capacity)), 1u << 30);
        _blockEntries = Math.Clamp(entries / 8, 1, MaxBlockEntries); // at least 8 blocks: dropping one keeps 7/8

        _blocks = new Block[entries / _blockEntries];
    }

    /// <summary>Statements kept now (at most the capacity).</summary>
    public int Count => _written <= (long)_blocks.Length * _blockEntries ? (int)_written : ((_blocks.Length - 1) * _blockEntries) + (int)((_written - 1) % _blockEntries) + 1;

    /// <summary>Records where the statement about (<paramref name="sender"/>, <paramref name="messageId"/>) of kind <paramref name="kind"/> is.</summary>
    public void Add(string sender, UInt128 messageId, StatementKind kind, string recipient, StatementLocation location)
    {
        int at = (int)(_written % _blockEntries);
        Block block = at == 0 ? StartBlock(_written / _blockEntries % _blocks.Length) : _blocks[_written / _blockEntries % _blocks.Length];
        ulong hash = KeyHash(sender, messageId);
        ref int head = ref block.Heads[(int)(hash & (ulong)(_blockEntries - 1))];
        block.Entries[at] = new Entry
        {
            KeyHash = hash,
            Offset = location.Offset,
            TreeId = checked((uint)location.TreeId),
            Leaf = checked((int)location.Leaf),
            Previous = head,
            Length = checked((ushort)location.Length),
            Kind = kind,
            Recipient = PartnerNumber(recipient),
        };
        head = at;
        _written++;
    }

    /// <summary>
    /// The newest accepted and delivery statements recorded under the key's hash, and the recipient the newest of them
    /// names; a candidate (another key may share the hash): check the statements. False when none is kept.
    /// </summary>
    public bool TryFind(string sender, UInt128 messageId, out StatementLocation accepted, out StatementLocation delivery, out string? recipient)
    {
        accepted = default;
        delivery = default;
        recipient = null;
        if (_written == 0)
        {
            return false;
        }

        ulong hash = KeyHash(sender, messageId);
        int bucket = (int)(hash & (ulong)(_blockEntries - 1));
        long newestBlock = (_written - 1) / _blockEntries;
        for (long b = newestBlock; b >= 0 && b > newestBlock - _blocks.Length; b--)
        {
            Block block = _blocks[b % _blocks.Length];
            for (int at = block.Heads[bucket]; at >= 0; at = block.Entries[at].Previous)
            {
                ref Entry entry = ref block.Entries[at];
                if (entry.KeyHash != hash)
                {
                    continue;
                }

                var location = new StatementLocation(entry.TreeId, entry.Leaf, entry.Offset, entry.Length);
                if (entry.Kind == StatementKind.Accepted && accepted.TreeId == 0)
                {
                    accepted = location;
                    recipient ??= _partners[entry.Recipient];
                }
                else if (entry.Kind == StatementKind.Delivery && delivery.TreeId == 0)
                {
                    delivery = location;
                    recipient ??= _partners[entry.Recipient];
                }
            }
        }

        return accepted.TreeId != 0 || delivery.TreeId != 0;
    }

    /// <summary>Whether an accepted statement about the key is recorded (a candidate, as <see cref="TryFind"/>).</summary>
    public bool HasAccepted(string sender, UInt128 messageId) => TryFind(sender, messageId, out StatementLocation accepted, out _, out _) && accepted.TreeId != 0;

    private Block StartBlock(long index)
    {
        // First use allocates; reuse drops the oldest block's statements at once.
        Block block = _blocks[index] ??= new Block(_blockEntries);
        Array.Fill(block.Heads, -1);
        return block;
    }

    private static ulong KeyHash(string sender, UInt128 messageId)
    {
        Span<byte> key = stackalloc byte[16 + 256];
        BinaryPrimitives.WriteUInt128BigEndian(key, messageId);
        int length = Encoding.UTF8.TryGetBytes(sender, key[16..], out int written) ? 16 + written : -1;
        return length >= 0 ? XxHash3.HashToUInt64(key[..length], Seed) : XxHash3.HashToUInt64(Encoding.UTF8.GetBytes(sender), Seed ^ (long)(ulong)messageId);
    }

    private ushort PartnerNumber(string partner)
    {
        if (!_partnerIds.TryGetValue(partner, out ushort number))
        {
            number = checked((ushort)_partners.Count); // partner ids seen by one relay: far fewer than 65,536
            _partners.Add(partner);
            _partnerIds.Add(partner, number);
        }

        return number;
    }

    private sealed class Block(int entries)
    {
        public Entry[] Entries { get; } = new Entry[entries];

        // Per bucket, the newest entry's index in this block; -1: none.
        public int[] Heads { get; } = new int[entries];
    }

    private struct Entry
    {
        public ulong KeyHash;
        public long Offset;
        public uint TreeId;
        public int Leaf;
        public int Previous; // the previous entry of this bucket's chain in the block; -1: none
        public ushort Length;
        public StatementKind Kind;
        public ushort Recipient;
    }
}
