using System.Globalization;

namespace Relayd.Diagnostics.Journal;

/// <summary>
/// Whether stderr is connected to the journal, as systemd documents it: <c>JOURNAL_STREAM</c> (<c>DEVICE:INODE</c>,
/// decimal) names the stream socket systemd gave the service, and only counts while fd 2 is still that socket
/// (a child with stderr redirected inherits the variable but not the socket).
/// </summary>
/// <remarks>
/// fd 2 is compared through <c>/proc/self/fd/2</c>, whose link target for a socket is <c>socket:[INODE]</c>: the
/// inode alone names it, as every socket lives on the one sockfs device; this needs no <c>fstat</c> and no
/// per-architecture <c>struct stat</c> layout. Without /proc the answer is "no" (console logging).
/// </remarks>
internal static class JournalStream
{
    /// <summary>Whether stderr is the journal stream <c>JOURNAL_STREAM</c> names.</summary>
    public static bool IsStandardError() => IsFileDescriptor(Environment.GetEnvironmentVariable("JOURNAL_STREAM"), 2);

    /// <summary>Whether <paramref name="fd"/> of this process is the socket <paramref name="journalStream"/> names.</summary>
    internal static bool IsFileDescriptor(string? journalStream, int fd)
    {
        string? target;
        try
        {
            target = new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        return Matches(journalStream, target);
    }

    /// <summary>Whether a <c>/proc/self/fd/N</c> link target is the socket of a <c>JOURNAL_STREAM</c> value.</summary>
    internal static bool Matches(string? journalStream, string? fdLinkTarget)
    {
        if (string.IsNullOrEmpty(journalStream) || fdLinkTarget is null)
        {
            return false;
        }

        int colon = journalStream.IndexOf(':', StringComparison.Ordinal);
        ReadOnlySpan<char> target = fdLinkTarget;
        return colon > 0
            && ulong.TryParse(journalStream.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode)
            && target.StartsWith("socket:[", StringComparison.Ordinal)
            && target.EndsWith("]", StringComparison.Ordinal)
            && ulong.TryParse(target["socket:[".Length..^1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong socketInode)
            && socketInode == inode;
    }
}
