using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Relayd.Wal;

/// <summary>One segment file, <c>wal-&lt;16 hex digits&gt;.log</c>, of fixed length, open for reading and writing.</summary>
internal sealed class WalSegment : IDisposable
{
    private const string Prefix = "wal-";
    private const string Suffix = ".log";
    internal const string TemporarySuffix = ".tmp";

    private readonly SafeFileHandle? _directHandle;

    private WalSegment(ulong number, string path, SafeFileHandle handle, SafeFileHandle? directHandle, long length)
    {
        Number = number;
        Path = path;
        Handle = handle;
        _directHandle = directHandle;
        Length = length;
    }

    public ulong Number { get; }

    public string Path { get; }

    /// <summary>The buffered handle: reads, repairs, fdatasync (which covers writes through either handle).</summary>
    public SafeFileHandle Handle { get; }

    /// <summary>
    /// Where the log writer's batches go: an O_DIRECT handle where the filesystem has one (writes of whole pages from
    /// page-aligned memory only), else <see cref="Handle"/>. A direct write also drops the pages it covers from the
    /// page cache, so buffered reads through <see cref="Handle"/> still see it.
    /// </summary>
    public SafeFileHandle WriteHandle => _directHandle ?? Handle;

    /// <summary>True when <see cref="WriteHandle"/> is an O_DIRECT handle.</summary>
    public bool WritesDirect => _directHandle is not null;

    /// <summary>The file's length, fixed when it was created.</summary>
    public long Length { get; }

    public string FileName => FileNameOf(Number);

    public static string FileNameOf(ulong number) => $"{Prefix}{number:x16}{Suffix}";

    public static bool TryParseFileName(string fileName, out ulong number)
    {
        number = 0;
        return fileName.Length == Prefix.Length + 16 + Suffix.Length
            && fileName.StartsWith(Prefix, StringComparison.Ordinal)
            && fileName.EndsWith(Suffix, StringComparison.Ordinal)
            && ulong.TryParse(fileName.AsSpan(Prefix.Length, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out number);
    }

    /// <summary>The segment numbers in <paramref name="directory"/>, ascending.</summary>
    public static List<ulong> List(string directory)
    {
        var numbers = new List<ulong>();
        foreach (string path in System.IO.Directory.EnumerateFiles(directory, Prefix + "*" + Suffix))
        {
            if (TryParseFileName(System.IO.Path.GetFileName(path), out ulong number))
            {
                numbers.Add(number);
            }
        }

        numbers.Sort();
        return numbers;
    }

    public static WalSegment Open(string directory, ulong number, bool writable)
    {
        string path = System.IO.Path.Combine(directory, FileNameOf(number));
        SafeFileHandle handle = File.OpenHandle(
            path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite);
        try
        {
            long length = RandomAccess.GetLength(handle);
            SafeFileHandle? direct = writable ? WalDirectWrite.TryOpenForWrites(path, length) : null;
            return new WalSegment(number, path, handle, direct, length);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates the segment pre-written with zeros: written to a temporary name, fdatasync'ed, renamed into place and
    /// the directory fsync'ed, so a crash never leaves a half-written segment under a real name.
    /// </summary>
    /// <remarks>
    /// Zeros are really written, not just fallocate'd: ext4 marks fallocate'd extents "unwritten" and journals the
    /// conversion on the first write to each of them, which cost ~25% of append throughput and doubled fdatasync time
    /// (PERFORMANCE.md lesson 2). Writing them also allocates every block up front, so a later pwrite into the
    /// segment cannot hit ENOSPC. They are written with O_DIRECT where the filesystem allows (no CPU copy, and no
    /// page cache filled with zeros); the log writer then writes whole pages (see <see cref="WalLogWriter"/>), so the
    /// kernel never has to read a page back from disk to complete a partial write.
    /// </remarks>
    public static WalSegment Create(string directory, ulong number, long length, IWalFileSync sync, ILogger logger)
    {
        long started = Stopwatch.GetTimestamp();
        string path = System.IO.Path.Combine(directory, FileNameOf(number));
        string temporary = path + TemporarySuffix;
        try
        {
            bool direct = WalDirectWrite.TryWriteZeros(temporary, length);
            using (SafeFileHandle handle = File.OpenHandle(temporary, direct ? FileMode.Open : FileMode.Create, FileAccess.ReadWrite, FileShare.None))
            {
                if (!direct)
                {
                    WriteZeros(handle, 0, length);
                }

                int errno = sync.FDataSync(handle);
                if (errno != 0)
                {
                    throw WalDirectorySync.Error("fdatasync", temporary, errno);
                }
            }

            File.Move(temporary, path, overwrite: false);
            WalDirectorySync.Sync(directory);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }

        WalLog.SegmentCreated(logger, FileNameOf(number), length, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return Open(directory, number, writable: true);
    }

    /// <summary>Overwrites [offset, offset + count) with zeros and fdatasyncs the file.</summary>
    public void Zero(long offset, long count, IWalFileSync sync)
    {
        WriteZeros(Handle, offset, count);
        int errno = sync.FDataSync(Handle);
        if (errno != 0)
        {
            throw WalDirectorySync.Error("fdatasync", Path, errno);
        }
    }

    public void Dispose()
    {
        _directHandle?.Dispose();
        Handle.Dispose();
    }

    private static void WriteZeros(SafeFileHandle handle, long offset, long count)
    {
        ReadOnlySpan<byte> zeros = ZeroBlock.Bytes;
        for (long done = 0; done < count;)
        {
            int chunk = (int)Math.Min(zeros.Length, count - done);
            RandomAccess.Write(handle, zeros[..chunk], offset + done);
            done += chunk;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>A block of zeros for pre-writing, allocated once on first use.</summary>
    private static class ZeroBlock
    {
        public static readonly byte[] Bytes = new byte[256 * 1024];
    }
}
