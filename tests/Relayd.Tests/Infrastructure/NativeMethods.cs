using System.Runtime.InteropServices;

namespace Relayd.Tests.Infrastructure;

/// <summary>The libc calls the tests make directly.</summary>
internal static partial class NativeMethods
{
    [LibraryImport("libc", SetLastError = true)]
    internal static partial int kill(int pid, int signal);

    [LibraryImport("libc")]
    internal static partial uint geteuid();
}
