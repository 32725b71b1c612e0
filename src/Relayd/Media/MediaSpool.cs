using System.Globalization;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;
using Relayd.Protocol.V1;
using System.Runtime.InteropServices;

namespace Relayd.Media;

/// <summary>
/// The spool directory on disk: one subdirectory per recipient partner, and per transfer a <c>.meta</c> file (the
/// MediaOpen as the sender wrote it) plus the blob, named <c>.part</c> while it arrives and <c>.blob</c> once it is
/// verified and fsynced. The rename is the commit point: after a restart a <c>.blob</c> is delivered, a <c>.part</c>
/// is resumable by its sender.
/// </summary>
internal sealed class MediaSpool : IMediaSpool
{
    public const string PartExtension = ".part";
    public const string BlobExtension = ".blob";
    public const string MetaExtension = ".meta";

    public MediaSpool(string directory)
    {
        // Created with the first transfer, so that a relay without media traffic needs no spool directory.
        Directory = directory;
    }

    public string Directory { get; }

    public string Location => Directory;

    /// <summary>Base path (without extension) of a transfer's files.</summary>
    public string BasePath(string recipientPartner, string senderPartner, UInt128 transferId) =>
        Path.Combine(Directory, recipientPartner, senderPartner + "." + transferId.ToString("x32", CultureInfo.InvariantCulture));

    /// <summary>Creates the meta file (fsynced) and an empty <c>.part</c> file; returns the open part file.</summary>
    public SafeFileHandle Create(string basePath, MediaOpen open)
    {
        string directory = Path.GetDirectoryName(basePath)!;
        System.IO.Directory.CreateDirectory(directory);
        using (SafeFileHandle meta = File.OpenHandle(basePath + MetaExtension, FileMode.Create, FileAccess.Write))
        {
            byte[] bytes = open.ToByteArray();
            RandomAccess.Write(meta, bytes, 0);
            RandomAccess.FlushToDisk(meta);
        }

        SafeFileHandle part = File.OpenHandle(basePath + PartExtension, FileMode.Create, FileAccess.ReadWrite, FileShare.Read);
        SyncDirectory(directory);
        return part;
    }

    /// <summary>Opens an existing <c>.part</c> file to continue writing it.</summary>
    public SafeFileHandle OpenPart(string basePath) =>
        File.OpenHandle(basePath + PartExtension, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);

    public void Write(SafeFileHandle part, ReadOnlySpan<byte> data, long offset) => RandomAccess.Write(part, data, offset);

    public void Flush(SafeFileHandle part) => RandomAccess.FlushToDisk(part);

    /// <summary>fsyncs the part file, renames it to <c>.blob</c> and fsyncs the directory: the blob is now durable.</summary>
    public void Commit(SafeFileHandle part, string basePath)
    {
        RandomAccess.FlushToDisk(part);
        part.Dispose();
        File.Move(basePath + PartExtension, basePath + BlobExtension, overwrite: true);
        SyncDirectory(Path.GetDirectoryName(basePath)!);
    }

    /// <summary>
    /// Starts writing back [offset, offset + length) of a spool file without waiting (sync_file_range WRITE), so that the
    /// fsync at MediaClose finds little left to do and a 1 GiB blob does not stall the disk (and the WAL's fdatasync) at
    /// its end. Best effort: an error here is left for that fsync to report.
    /// </summary>
    public void StartWriteback(SafeFileHandle file, long offset, long length)
    {
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            _ = NativeMethods.sync_file_range((int)file.DangerousGetHandle(), offset, length, NativeMethods.SyncFileRangeWrite);
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Opens a blob for streaming: while it arrives the blob is the <c>.part</c> file (the rename at commit keeps an
    /// open handle valid), else, or once it was committed in the meantime, the <c>.blob</c>.
    /// </summary>
    public SafeFileHandle OpenForReading(string basePath, bool arriving)
    {
        if (arriving)
        {
            try
            {
                return File.OpenHandle(basePath + PartExtension, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (FileNotFoundException)
            {
                // Committed in the meantime.
            }
        }

        return File.OpenHandle(basePath + BlobExtension, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
    }

    public int Read(SafeFileHandle file, Span<byte> buffer, long offset) => RandomAccess.Read(file, buffer, offset);

    /// <summary>Deletes every file of a transfer; missing files are fine.</summary>
    public void Delete(string basePath)
    {
        File.Delete(basePath + PartExtension);
        File.Delete(basePath + BlobExtension);
        File.Delete(basePath + MetaExtension);
    }

    /// <summary>Every transfer found on disk, as left by an earlier run; null when the spool directory does not exist.</summary>
    public IEnumerable<SpooledFile>? Scan() => System.IO.Directory.Exists(Directory) ? ScanDirectory() : null;

    private IEnumerable<SpooledFile> ScanDirectory()
    {
        foreach (string recipientDir in System.IO.Directory.EnumerateDirectories(Directory))
        {
            foreach (string meta in System.IO.Directory.EnumerateFiles(recipientDir, "*" + MetaExtension))
            {
                string basePath = meta[..^MetaExtension.Length];
                MediaOpen? open;
                try
                {
                    open = MediaOpen.Parser.ParseFrom(File.ReadAllBytes(meta));
                }
                catch (InvalidProtocolBufferException)
                {
                    open = null;
                }

                bool complete = File.Exists(basePath + BlobExtension);
                long length = complete ? new FileInfo(basePath + BlobExtension).Length
                    : File.Exists(basePath + PartExtension) ? new FileInfo(basePath + PartExtension).Length : -1;
                yield return new SpooledFile(basePath, open, complete, length, File.GetLastWriteTimeUtc(meta));
            }
        }
    }

    // Makes the creation or rename of directory entries durable; the WAL's helper does the open(2) + fsync(2).
    private static void SyncDirectory(string directory) => Wal.WalDirectorySync.Sync(directory);
}

/// <summary>One transfer found by <see cref="IMediaSpool.Scan"/>; <see cref="Open"/> is null when its meta file is unreadable.</summary>
internal readonly record struct SpooledFile(string BasePath, MediaOpen? Open, bool Complete, long Length, DateTime CreatedUtc);

internal static partial class NativeMethods
{
    public const uint SyncFileRangeWrite = 2;

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int sync_file_range(int fd, long offset, long nbytes, uint flags);
}
