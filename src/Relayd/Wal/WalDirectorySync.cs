using System.Runtime.InteropServices;

namespace Relayd.Wal;

/// <summary>
/// fsync(2) of a directory, so that creating, renaming and deleting segment files survives a crash (the file's own
/// fdatasync does not cover its directory entry). .NET cannot open a directory as a file handle, hence open(2) here.
/// </summary>
internal static partial class WalDirectorySync
{
    private const int ReadOnly = 0;
    private const int CloseOnExec = 0x80000; // O_CLOEXEC on Linux x64 and arm64

    /// <summary>Syncs <paramref name="directory"/>; throws <see cref="IOException"/> (HResult = errno) on failure.</summary>
    public static void Sync(string directory)
    {
        int fd = open(directory, ReadOnly | CloseOnExec);
        if (fd < 0)
        {
            throw Error("open", directory, Marshal.GetLastPInvokeError());
        }

        try
        {
            if (fsync(fd) != 0)
            {
                throw Error("fsync", directory, Marshal.GetLastPInvokeError());
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>An <see cref="IOException"/> for a failed system call, with the errno as its HResult.</summary>
    internal static IOException Error(string call, string path, int errno) =>
        new($"{call} of {path} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc")]
    private static partial int close(int fd);
}
