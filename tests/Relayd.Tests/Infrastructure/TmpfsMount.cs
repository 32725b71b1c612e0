namespace Relayd.Tests.Infrastructure;

/// <summary>A small tmpfs mounted by the test (root only): a filesystem that really runs full.</summary>
internal sealed class TmpfsMount : IAsyncDisposable
{
    private TmpfsMount(string directory) => Directory = directory;

    public string Directory { get; }

    /// <summary>True when the tests run as root (geteuid() == 0), the only case in which they can mount.</summary>
    public static bool RunningAsRoot => OperatingSystem.IsLinux() && NativeMethods.geteuid() == 0;

    /// <summary>
    /// Mounts a tmpfs of <paramref name="sizeMiB"/> MiB on a new temporary directory. Returns null and the reason when
    /// mount(8) fails (e.g. a container without CAP_SYS_ADMIN).
    /// </summary>
    public static async Task<(TmpfsMount? Mount, string Failure)> TryMountAsync(int sizeMiB)
    {
        string directory = System.IO.Directory.CreateTempSubdirectory("relayd-tmpfs-").FullName;
        ExternalProcess.Result result = await ExternalProcess.RunAsync("mount", ["-t", "tmpfs", "-o", $"size={sizeMiB}m", "tmpfs", directory], timeoutSeconds: 30);
        if (result.ExitCode != 0)
        {
            System.IO.Directory.Delete(directory);
            return (null, $"mount -t tmpfs -o size={sizeMiB}m tmpfs {directory} failed ({result.ExitCode}): {result.StandardError.Trim()}");
        }

        return (new TmpfsMount(directory), "");
    }

    public async ValueTask DisposeAsync()
    {
        ExternalProcess.Result result = await ExternalProcess.RunAsync("umount", [Directory], timeoutSeconds: 30);
        if (result.ExitCode != 0)
        {
            // Still busy (a process that has not quite exited): detach it lazily rather than leave it mounted.
            await ExternalProcess.RunAsync("umount", ["-l", Directory], timeoutSeconds: 30);
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
