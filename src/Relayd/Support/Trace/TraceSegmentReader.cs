using System.Buffers.Binary;
using System.IO.Hashing;

namespace Relayd.Support.Trace;

/// <summary>Reads the records of one segment file, in order; stops at the first torn or damaged batch.</summary>
internal static class TraceSegmentReader
{
    /// <summary>
    /// Calls <paramref name="onRecord"/> for each record <paramref name="wanted"/> keeps (by kind and id) of the segment
    /// at <paramref name="path"/>, in order, and <paramref name="onStarted"/> where a relay process began writing (its
    /// start, Unix ms); false when the file is gone.
    /// </summary>
    public static bool Read(string path, Func<Protocol.V1.TraceEventKind, UInt128, bool> wanted, Action<TraceRecord> onRecord, Action<long>? onStarted = null)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1 << 16);
        }
        catch (FileNotFoundException)
        {
            return false;
        }

        using (file)
        {
            Span<byte> magic = stackalloc byte[TraceRecordCodec.Magic.Length];
            if (file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false) < magic.Length || !magic.SequenceEqual(TraceRecordCodec.Magic))
            {
                return true;
            }

            var partners = new List<string>();
            Span<byte> header = stackalloc byte[TraceRecordCodec.BatchHeaderBytes];
            byte[] batch = new byte[1 << 16];
            while (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) == header.Length)
            {
                int length = BinaryPrimitives.ReadInt32LittleEndian(header);
                uint crc = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
                long baseMs = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
                if (length <= 0 || length > TraceSegmentWriter.MaxBatchBytes)
                {
                    break;
                }

                if (batch.Length < length)
                {
                    batch = new byte[length];
                }

                Span<byte> body = batch.AsSpan(0, length);
                if (file.ReadAtLeast(body, length, throwOnEndOfStream: false) < length || Crc32.HashToUInt32(body) != crc
                    || !TraceRecordCodec.ReadBatch(body, baseMs, partners, wanted, onRecord, onStarted))
                {
                    break; // the torn tail of a crash or power loss: what follows was never completely written
                }
            }
        }

        return true;
    }
}
