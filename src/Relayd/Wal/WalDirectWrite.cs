using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Relayd.Wal;

/// <summary>
/// O_DIRECT for the log's files: a new segment's zeros are pre-written from one aligned block, instead of the CPU
/// copying 64 MiB of zeros into the page cache for every segment (measured: 30% of the relay's CPU under load), and
/// the log writer's batches go through a second, O_DIRECT handle (<see cref="TryOpenForWrites"/>) so records are not
/// copied into the page cache either. Filesystems without O_DIRECT (tmpfs) fall back to ordinary writes. Hand-written
/// P/Invoke: .NET's FileOptions has no O_DIRECT.
/// </summary>
internal static unsafe partial class WalDirectWrite
{
    private const int Alignment = 4096;
    private const int BlockBytes = 1024 * 1024; // zeros per O_DIRECT write while pre-writing a segment: large writes, 1 MiB of native memory
    private const int WriteOnly = 0x1;
    private const int Create = 0x40;
    private const int Truncate = 0x200;
    private const int CloseOnExec = 0x80000;
    private const int InvalidArgument = 22; // EINVAL: the filesystem does not do O_DIRECT

    private static readonly Lazy<IntPtr> ZeroBlock = new(() =>
    {
        void* block = NativeMemory.AlignedAlloc(BlockBytes, Alignment);
        NativeMemory.Clear(block, BlockBytes);
        return (IntPtr)block;
    });

    /// <summary>O_DIRECT differs between architectures; null where relayd does not know it.</summary>
    private static int? DirectFlag => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 0x4000,
        Architecture.Arm64 => 0x10000,
        _ => null,
    };

    /// <summary>
    /// Opens <paramref name="path"/> for O_DIRECT writes of whole, page-aligned pages (the log writer's batches); null
    /// when the filesystem or platform does not do O_DIRECT, or the file's length is not whole pages (the buffered
    /// handle takes the writes then).
    /// </summary>
    /// <exception cref="IOException">open failed for another reason (HResult = errno).</exception>
    public static SafeFileHandle? TryOpenForWrites(string path, long length)
    {
        return TryOpen(path, length, WriteOnly, mode: 0);
    }

    /// <summary>Opens <paramref name="path"/> with O_DIRECT and <paramref name="flags"/>; null where O_DIRECT is not to be had.</summary>
    private static SafeFileHandle? TryOpen(string path, long length, int flags, int mode)
    {
        if (DirectFlag is not int direct || length % Alignment != 0)
        {
            return null;
        }

        int fd = open(path, flags | CloseOnExec | direct, mode);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno == InvalidArgument ? null : throw WalDirectorySync.Error("open (O_DIRECT)", path, errno);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// Creates (or truncates) <paramref name="path"/> and writes <paramref name="length"/> zero bytes to it with
    /// O_DIRECT; false when the filesystem or platform does not support it (nothing is created then).
    /// </summary>
    /// <exception cref="IOException">open or write failed for another reason (HResult = errno).</exception>
    public static bool TryWriteZeros(string path, long length)
    {
        using SafeFileHandle? handle = TryOpen(path, length, WriteOnly | Create | Truncate, mode: 0x1A4 /* 0644 */);
        if (handle is null)
        {
            return false;
        }

        int fd = (int)handle.DangerousGetHandle();
        for (long done = 0; done < length;)
        {
            int chunk = (int)Math.Min(BlockBytes, length - done);
            long written = pwrite(fd, (byte*)ZeroBlock.Value, chunk, done);
            if (written < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == InvalidArgument && done == 0)
                {
                    return false; // opened, but writes are refused (some filesystems): take the buffered path
                }

                throw WalDirectorySync.Error("pwrite (O_DIRECT)", path, errno);
            }

            done += written;
        }

        return true;
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint pwrite(int fd, byte* buffer, nint count, long offset);
}
