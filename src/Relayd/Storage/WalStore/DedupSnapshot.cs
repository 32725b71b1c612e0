using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Wal;

namespace Relayd.Storage.WalStore;

/// <summary>
/// The dedup index written to <c>dedup.snapshot</c> in the log directory before retention deletes segments, so the
/// message ids of deleted envelopes are still recognised after a restart within the dedup window. Written to a
/// temporary file, fdatasync'ed, renamed over the old one and the directory fsync'ed: a crash leaves the old or the
/// new snapshot, never a mix.
/// </summary>
/// <remarks>
/// Format (little-endian): "RDD2", then per partner <c>[u16 id length][id UTF-8][u32 count][count × (u128 message
/// id, i64 accepted_at_ms, u32 recipient partner hash, u32 flags, u64 users hash)]</c>, then a CRC-32C of everything
/// before it (the last three fields are <see cref="CarriedTo"/>). "RDD1" (the same without them, 24 bytes per id,
/// written before abuse reports and read receipts) is still read: its ids come back as not known where they went.
/// </remarks>
internal static class DedupSnapshot
{
    public const string FileName = "dedup.snapshot";
    private const int EntryBytes = 40;
    private const int Version1EntryBytes = 24;
    private static readonly byte[] Magic = "RDD2"u8.ToArray();
    private static readonly byte[] Version1Magic = "RDD1"u8.ToArray();

    public static void Write(string directory, IDedupIndexes dedup, long nowMs, ILogger logger)
    {
        var stopwatch = Stopwatch.StartNew();
        string path = Path.Combine(directory, FileName);
        string temporary = path + ".new";
        int total;
        try
        {
            total = WriteTemporary(temporary, dedup, nowMs);
        }
        catch
        {
            File.Delete(temporary); // a half-written snapshot must not hold on to space the relay is short of
            throw;
        }

        File.Move(temporary, path, overwrite: true);
        WalDirectorySync.Sync(directory);
        StorageLog.DedupSnapshotWritten(logger, total, stopwatch.Elapsed.TotalMilliseconds);
    }

    private static int WriteTemporary(string temporary, IDedupIndexes dedup, long nowMs)
    {
        // Each partner's entries go from its dedup index through one 1 MiB buffer into the file, under its dedup lock
        // (a page-cache write of 40 MB takes a few milliseconds, about what copying the index out took): no copy of
        // the index as objects and no per-entry write. A snapshot of 2 x 1 M ids used to grow a List of tuples per
        // partner, large-object garbage every time retention ran.
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferBytes);
        int total = 0;
        try
        {
            using var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
            var writer = new EntryWriter(buffer, file);
            writer.Put(Magic);
            Span<byte> scratch = stackalloc byte[6];
            foreach ((byte[] partnerId, IdempotencyIndex index) in dedup.All)
            {
                lock (index.SyncRoot)
                {
                    int count = index.Expire(nowMs);
                    BinaryPrimitives.WriteUInt16LittleEndian(scratch, (ushort)partnerId.Length);
                    writer.Put(scratch[..2]);
                    writer.Put(partnerId);
                    BinaryPrimitives.WriteInt32LittleEndian(scratch, count);
                    writer.Put(scratch[..4]);
                    index.Visit(ref writer, nowMs);
                    writer.Flush();
                    total += count;
                }
            }

            BinaryPrimitives.WriteUInt32LittleEndian(scratch, Crc32C.Finish(writer.Crc));
            file.Write(scratch[..4]);
            int result = LibcFileSync.Instance.FDataSync(file.SafeFileHandle);
            if (result != 0)
            {
                throw new IOException($"fdatasync of {temporary} failed (errno {result}); the old dedup snapshot stays");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return total;
    }

    private const int BufferBytes = 1 << 20;

    /// <summary>Lays the remembered ids out as the snapshot holds them (40 bytes each) in a buffer written out when full, with the running CRC.</summary>
    private struct EntryWriter(byte[] buffer, FileStream file) : IdempotencyIndex.IVisitor
    {
        private int _used;

        public uint Crc { get; private set; } = Crc32C.Seed;

        public void Visit(UInt128 messageId, long acceptedAtMs, CarriedTo carried)
        {
            if (buffer.Length - _used < EntryBytes)
            {
                Flush();
            }

            Span<byte> entry = buffer.AsSpan(_used, EntryBytes);
            BinaryPrimitives.WriteUInt128LittleEndian(entry, messageId);
            BinaryPrimitives.WriteInt64LittleEndian(entry[16..], acceptedAtMs);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[24..], carried.RecipientPartnerHash);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[28..], carried.Flags);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[32..], carried.UsersHash);
            _used += EntryBytes;
        }

        public void Put(ReadOnlySpan<byte> bytes)
        {
            if (buffer.Length - _used < bytes.Length)
            {
                Flush();
            }

            bytes.CopyTo(buffer.AsSpan(_used));
            _used += bytes.Length;
        }

        public void Flush()
        {
            ReadOnlySpan<byte> written = buffer.AsSpan(0, _used);
            Crc = Crc32C.Append(Crc, written);
            file.Write(written);
            _used = 0;
        }
    }

    /// <summary>Loads the snapshot (if any) into the sender partners' dedup indexes; returns how many ids it held.</summary>
    /// <exception cref="InvalidDataException">The file is damaged (it is only ever replaced whole, so that is not a crash).</exception>
    public static int Load(string directory, IDedupIndexes dedup)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return 0;
        }

        byte[] data = File.ReadAllBytes(path);
        bool version1 = data.Length >= Magic.Length && data.AsSpan(0, Magic.Length).SequenceEqual(Version1Magic);
        if (data.Length < Magic.Length + 4 || !(version1 || data.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            || Crc32C.Compute(data.AsSpan(0, data.Length - 4)) != BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(data.Length - 4)))
        {
            throw new InvalidDataException($"{path} is damaged (bad magic or CRC-32C); move it away to start without the dedup history it holds");
        }

        int offset = Magic.Length;
        int end = data.Length - 4;
        int total = 0;
        while (offset < end)
        {
            int idLength = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset));
            string id = Encoding.UTF8.GetString(data, offset + 2, idLength);
            offset += 2 + idLength;
            int count = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));
            offset += 4;
            IdempotencyIndex? index = dedup.Find(id);
            int entryBytes = version1 ? Version1EntryBytes : EntryBytes;
            for (int i = 0; i < count; i++, offset += entryBytes)
            {
                CarriedTo carried = version1 ? default : new CarriedTo(
                    BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 24)),
                    BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(offset + 28)),
                    BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(offset + 32)));
                index?.Record(BinaryPrimitives.ReadUInt128LittleEndian(data.AsSpan(offset)), BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(offset + 16)), carried);
            }

            total += count;
        }

        return total;
    }
}
