using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Relayd.Wal;

/// <summary>
/// The one seam around the log's disk flush, for fault-injection tests only (a flaky disk returning EIO). Everything
/// else the log does uses the real system calls.
/// </summary>
public interface IWalFileSync
{
    /// <summary>Flushes the file's data (and the metadata needed to read it) to the device.</summary>
    /// <returns>0 on success, otherwise the errno (e.g. 5 for EIO, 28 for ENOSPC).</returns>
    int FDataSync(SafeFileHandle file);
}

/// <summary>
/// The real fdatasync(2). FileStream.Flush(true) and RandomAccess.FlushToDisk are not used: on .NET 10 they were seen
/// to swallow EIO, and a swallowed fsync error means acknowledging data that is not on disk.
/// </summary>
public sealed partial class LibcFileSync : IWalFileSync
{
    /// <summary>The shared instance (the type has no state).</summary>
    public static LibcFileSync Instance { get; } = new();

    /// <inheritdoc />
    public int FDataSync(SafeFileHandle file)
    {
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            return fdatasync((int)file.DangerousGetHandle()) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);
}
