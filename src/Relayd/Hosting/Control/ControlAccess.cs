namespace Relayd.Hosting.Control;

/// <summary>
/// Who may use the control socket: root, the relay's own user, and members (primary or supplementary group) of the
/// configured group. Supplementary groups come from SO_PEERGROUPS, else from /proc/PID/status. The socket's mode 0660 already keeps others out; this check holds even if the file mode is widened.
/// </summary>
internal sealed class ControlAccess
{
    private readonly Func<int, IReadOnlyList<uint>> _supplementaryGroups;

    public ControlAccess(uint ownUid, string? groupName, uint? groupId, Func<int, IReadOnlyList<uint>>? supplementaryGroups = null)
    {
        OwnUid = ownUid;
        GroupName = groupName;
        GroupId = groupId;
        _supplementaryGroups = supplementaryGroups ?? UnixAccounts.SupplementaryGroups;
    }

    public uint OwnUid { get; }

    public string? GroupName { get; }

    /// <summary>The configured group's gid; null when none is configured or it is unknown.</summary>
    public uint? GroupId { get; }

    /// <summary>Who may connect, for the log and the refusal: "root, uid 998 and members of group 'relayd-admin'".</summary>
    public string Allowed => GroupId is null
        ? $"root and uid {OwnUid} (relayd's own user)"
        : $"root, uid {OwnUid} (relayd's own user) and members of group '{GroupName}' (gid {GroupId})";

    /// <summary>Null when <paramref name="peer"/> may use the socket; otherwise why not, naming the peer.</summary>
    public string? Refusal(PeerCredentials peer)
    {
        if (peer.Uid == 0 || peer.Uid == OwnUid)
        {
            return null;
        }

        if (GroupId is uint gid && (peer.Gid == gid || peer.Groups.Contains(gid) || _supplementaryGroups(peer.Pid).Contains(gid)))
        {
            return null;
        }

        return $"uid {peer.Uid} (gid {peer.Gid}, pid {peer.Pid}) may not use the control socket: only {Allowed} may";
    }
}
