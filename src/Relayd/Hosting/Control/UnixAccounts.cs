using System.Globalization;
using System.Runtime.InteropServices;

namespace Relayd.Hosting.Control;

/// <summary>
/// The few facts of the Unix account database the control socket needs. Written by hand: no served NuGet package
/// reads it AOT-clean; /etc/group and /proc/PID/status cover the local system groups a package creates (groups only
/// known to NSS, e.g. LDAP, are not seen).
/// </summary>
internal static partial class UnixAccounts
{
    /// <summary>The relay process's effective uid.</summary>
    public static uint EffectiveUid() => geteuid();

    /// <summary>The gid of the group named <paramref name="name"/> in /etc/group; null when it has none.</summary>
    public static uint? GroupId(string name, string groupFile = "/etc/group")
    {
        foreach (string line in File.ReadLines(groupFile))
        {
            // name:password:gid:members
            string[] fields = line.Split(':');
            if (fields.Length >= 3 && fields[0] == name && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint gid))
            {
                return gid;
            }
        }

        return null;
    }

    /// <summary>
    /// The supplementary groups of process <paramref name="pid"/> (the <c>Groups:</c> line of /proc/PID/status); empty
    /// when the process is gone or hidden (a unit with ProtectProc=invisible sees only its own user's processes).
    /// </summary>
    public static IReadOnlyList<uint> SupplementaryGroups(int pid)
    {
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/status"))
            {
                if (line.StartsWith("Groups:", StringComparison.Ordinal))
                {
                    var groups = new List<uint>();
                    foreach (string field in line["Groups:".Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                    {
                        if (uint.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out uint gid))
                        {
                            groups.Add(gid);
                        }
                    }

                    return groups;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone or hidden: only the primary gid from SO_PEERCRED counts.
        }

        return [];
    }

    /// <summary>Gives <paramref name="path"/> the group <paramref name="gid"/> (owner unchanged).</summary>
    /// <exception cref="IOException">chown failed (e.g. the relay's user is not a member of the group).</exception>
    public static void SetGroup(string path, uint gid)
    {
        if (chown(path, uint.MaxValue, gid) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot give {path} group {gid}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
    }

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chown(string path, uint owner, uint group);
}
