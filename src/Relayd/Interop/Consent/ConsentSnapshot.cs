using System.Buffers.Binary;
using System.Text;
using Relayd.Storage.WalStore;
using Relayd.Wal;

namespace Relayd.Interop.Consent;

/// <summary>
/// The consent table written whole to <c>consent.snapshot</c> in the consent log's directory, so the log's older
/// segments can go. Written to a temporary file, fdatasync'ed, renamed over the old one and the directory fsync'ed
/// (as the dedup snapshot): a crash leaves the old or the new snapshot, never a mix.
/// </summary>
/// <remarks>
/// Format (little-endian): "RDC1", i64 hash seed, u64 log position the snapshot covers up to (replay resumes there),
/// u16 ordinal count and per ordinal <c>[u16 length][partner id UTF-8]</c>, u16 partner count and per partner
/// <c>[u16 length][partner id UTF-8][i32 count][count × (u64 key, u64 scope)]</c>, then a CRC-32C of everything before.
/// </remarks>
internal static class ConsentSnapshot
{
    public const string FileName = "consent.snapshot";
    private static readonly byte[] Magic = "RDC1"u8.ToArray();

    /// <summary>What a snapshot holds.</summary>
    public sealed record Content(long Seed, ConsentLogMark ReplayFrom, IReadOnlyList<string> Ordinals, List<(string Owner, List<(ulong Key, ulong Scope)> Users)> Partners);

    public static void Write(string directory, Content content)
    {
        string path = Path.Combine(directory, FileName);
        string temporary = path + ".new";
        try
        {
            WriteTemporary(temporary, content);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }

        File.Move(temporary, path, overwrite: true);
        WalDirectorySync.Sync(directory);
    }

    private static void WriteTemporary(string temporary, Content content)
    {
        using var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
        uint crc = Crc32C.Seed;
        Span<byte> scratch = stackalloc byte[16];
        void Put(FileStream to, ReadOnlySpan<byte> bytes)
        {
            crc = Crc32C.Append(crc, bytes);
            to.Write(bytes);
        }

        void PutId(FileStream to, string id, Span<byte> buffer)
        {
            byte[] utf8 = Encoding.UTF8.GetBytes(id);
            BinaryPrimitives.WriteUInt16LittleEndian(buffer, (ushort)utf8.Length);
            Put(to, buffer[..2]);
            Put(to, utf8);
        }

        Put(file, Magic);
        BinaryPrimitives.WriteInt64LittleEndian(scratch, content.Seed);
        BinaryPrimitives.WriteUInt64LittleEndian(scratch[8..], content.ReplayFrom.Packed);
        Put(file, scratch);
        BinaryPrimitives.WriteUInt16LittleEndian(scratch, (ushort)content.Ordinals.Count);
        Put(file, scratch[..2]);
        foreach (string id in content.Ordinals)
        {
            PutId(file, id, scratch);
        }

        BinaryPrimitives.WriteUInt16LittleEndian(scratch, (ushort)content.Partners.Count);
        Put(file, scratch[..2]);
        foreach ((string owner, List<(ulong Key, ulong Scope)> users) in content.Partners)
        {
            PutId(file, owner, scratch);
            BinaryPrimitives.WriteInt32LittleEndian(scratch, users.Count);
            Put(file, scratch[..4]);
            foreach ((ulong key, ulong scope) in users)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(scratch, key);
                BinaryPrimitives.WriteUInt64LittleEndian(scratch[8..], scope);
                Put(file, scratch);
            }
        }

        BinaryPrimitives.WriteUInt32LittleEndian(scratch, Crc32C.Finish(crc));
        file.Write(scratch[..4]);
        file.Flush();
        int result = LibcFileSync.Instance.FDataSync(file.SafeFileHandle);
        if (result != 0)
        {
            throw new IOException($"fdatasync of {temporary} failed (errno {result}); the old consent snapshot stays");
        }
    }

    /// <summary>The snapshot in <paramref name="directory"/>; null when there is none.</summary>
    /// <exception cref="InvalidDataException">The file is damaged (it is only ever replaced whole, so that is not a crash).</exception>
    public static Content? Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        byte[] data = File.ReadAllBytes(path);
        if (data.Length < Magic.Length + 16 + 4 + 4 || !data.AsSpan(0, Magic.Length).SequenceEqual(Magic)
            || Crc32C.Compute(data.AsSpan(0, data.Length - 4)) != BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(data.Length - 4)))
        {
            throw new InvalidDataException($"{path} is damaged (bad magic or CRC-32C); restore it from a backup: without it the consent it holds is lost");
        }

        int offset = Magic.Length;
        long seed = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(offset));
        var replayFrom = new ConsentLogMark(BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(offset + 8)));
        offset += 16;
        string ReadId()
        {
            int length = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset));
            string id = Encoding.UTF8.GetString(data, offset + 2, length);
            offset += 2 + length;
            return id;
        }

        int ordinalCount = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset));
        offset += 2;
        var ordinals = new List<string>(ordinalCount);
        for (int i = 0; i < ordinalCount; i++)
        {
            ordinals.Add(ReadId());
        }

        int partnerCount = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(offset));
        offset += 2;
        var partners = new List<(string, List<(ulong, ulong)>)>(partnerCount);
        for (int p = 0; p < partnerCount; p++)
        {
            string owner = ReadId();
            int count = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));
            offset += 4;
            var users = new List<(ulong, ulong)>(count);
            for (int i = 0; i < count; i++, offset += 16)
            {
                users.Add((BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(offset)), BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(offset + 8))));
            }

            partners.Add((owner, users));
        }

        return new Content(seed, replayFrom, ordinals, partners);
    }
}
