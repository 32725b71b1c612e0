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
/// the files. A ring of packed 40-byte entries in the order the statements were written, chained per bucket of a
/// table of heads; the oldest entry is overwritten when the ring is full, and a chain ends where it reaches one.
/// </summary>
/// <remarks>
/// Why not a dictionary: the writer adds two statements per message at 100k+ messages a second, and a
/// <see cref="Dictionary{TKey, TValue}"/> of a million entries of ~110 bytes (key, two locations, recipient) took 11%
/// of the relay's CPU under load (perf, bench/README.md "Evidence"): a cache miss to find, one to move between its two
/// generations, one to insert. Here adding is one write at the ring's end and one head update; nothing is removed.
/// Keys are hashed with a random per-process seed (seeded xxHash3) so a partner cannot aim ids at one chain; a hash
/// match is a candidate only: the caller checks the statement itself (<see cref="EvidenceLayouts.IsAbout"/>).
/// Grows on demand (doubling, rehashed from the entries) up to its capacity. Not thread-safe: the owner's lock.
/// Hand-written: no served package has a bounded, insertion-ordered multimap of this shape.
/// </remarks>
internal sealed class StatementIndex
{
    private const int InitialEntries = 4096;
    private static readonly long Seed = BinaryPrimitives.ReadInt64LittleEndian(RandomNumberGenerator.GetBytes(8));

    private readonly int _capacity;
    private readonly Dictionary<string, ushort> _partnerIds = new(StringComparer.Ordinal);
    private readonly List<string> _partners = [];
    private Entry[] _entries;
    private long[] _heads;
    private long _written; // statements ever added: the next one's sequence number

    /// <param name="capacity">Statements kept (two per message), rounded up to a power of two.</param>
    public StatementIndex(int capacity)
    {
        _capacity = (int)Math.Min(BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, capacity)), 1u << 30);
        _entries = new Entry[Math.Min(InitialEntries, _capacity)];
        _heads = NewHeads(_entries.Length);
    }

    /// <summary>Statements kept now (at most the capacity).</summary>
    public int Count => (int)Math.Min(_written, _entries.Length);

    /// <summary>Records where the statement about (<paramref name="sender"/>, <paramref name="messageId"/>) of kind <paramref name="kind"/> is.</summary>
    public void Add(string sender, UInt128 messageId, StatementKind kind, string recipient, StatementLocation location)
    {
        if (_written >= _entries.Length && _entries.Length < _capacity)
        {
            Grow();
        }

        ulong hash = KeyHash(sender, messageId);
        long sequence = _written++;
        int bucket = (int)(hash & (ulong)(_heads.Length - 1));
        _entries[(int)(sequence & (_entries.Length - 1))] = new Entry
        {
            KeyHash = hash,
            Previous = _heads[bucket],
            Offset = location.Offset,
            TreeId = checked((uint)location.TreeId),
            Leaf = checked((int)location.Leaf),
            Length = checked((ushort)location.Length),
            Kind = kind,
            Recipient = PartnerNumber(recipient),
        };
        _heads[bucket] = sequence;
    }

    /// <summary>
    /// The newest accepted and delivery statements recorded under the key's hash, and the recipient they name; a
    /// candidate (another key may share the hash): check the statements. False when none is kept.
    /// </summary>
    public bool TryFind(string sender, UInt128 messageId, out StatementLocation accepted, out StatementLocation delivery, out string? recipient)
    {
        accepted = default;
        delivery = default;
        recipient = null;
        ulong hash = KeyHash(sender, messageId);
        long oldest = _written - _entries.Length;
        for (long sequence = _heads[(int)(hash & (ulong)(_heads.Length - 1))]; sequence >= 0 && sequence >= oldest;)
        {
            ref Entry entry = ref _entries[(int)(sequence & (_entries.Length - 1))];
            if (entry.KeyHash == hash)
            {
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

            // Chains point from newer to older entries only: a link to a sequence at or after this one is stale
            // (its entry was overwritten and the bucket reused), and so is one older than the ring.
            long previous = entry.Previous;
            if (previous >= sequence)
            {
                break;
            }

            sequence = previous;
        }

        return accepted.TreeId != 0 || delivery.TreeId != 0;
    }

    /// <summary>Whether an accepted statement about the key is recorded (a candidate, as <see cref="TryFind"/>).</summary>
    public bool HasAccepted(string sender, UInt128 messageId) => TryFind(sender, messageId, out StatementLocation accepted, out _, out _) && accepted.TreeId != 0;

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

    private void Grow()
    {
        // Full and below capacity: _written == _entries.Length, so entry i holds sequence i; rehash them all.
        var entries = new Entry[_entries.Length * 2];
        long[] heads = NewHeads(entries.Length);
        for (long sequence = 0; sequence < _written; sequence++)
        {
            Entry entry = _entries[sequence];
            int bucket = (int)(entry.KeyHash & (ulong)(heads.Length - 1));
            entry.Previous = heads[bucket];
            heads[bucket] = sequence;
            entries[sequence] = entry;
        }

        _entries = entries;
        _heads = heads;
    }

    private static long[] NewHeads(int entries)
    {
        long[] heads = new long[entries];
        Array.Fill(heads, -1L);
        return heads;
    }

    private struct Entry
    {
        public ulong KeyHash;
        public long Previous; // the sequence of the previous entry in this bucket's chain; -1: none
        public long Offset;
        public uint TreeId;
        public int Leaf;
        public ushort Length;
        public StatementKind Kind;
        public ushort Recipient;
    }
}
