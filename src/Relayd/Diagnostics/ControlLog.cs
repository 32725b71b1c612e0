using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>Log lines of the admin control socket (event ids 82x-84x): every mutating command names who asked.</summary>
internal static partial class ControlLog
{
    [LoggerMessage(EventIds.ControlListening, LogLevel.Information, "Control socket listening on {Path}: {Allowed} may use it")]
    public static partial void ControlListening(ILogger logger, string path, string allowed);

    [LoggerMessage(EventIds.ControlUnavailable, LogLevel.Warning, "No control socket: {Reason}; relayd ctl cannot reach this relay")]
    public static partial void ControlUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventIds.ControlPeerRefused, LogLevel.Warning, "Control socket refused uid {Uid} gid {Gid} pid {Pid}: {Reason}")]
    public static partial void ControlPeerRefused(ILogger logger, uint uid, uint gid, int pid, string reason);

    [LoggerMessage(EventIds.ControlPartnerSuspended, LogLevel.Warning, "Partner '{PartnerId}' suspended by ctl uid={Uid} pid={Pid}: {Sessions} session(s) sent GoAway PARTNER_SUSPENDED")]
    public static partial void ControlPartnerSuspended(ILogger logger, string partnerId, uint uid, int pid, int sessions);

    [LoggerMessage(EventIds.ControlPartnerResumed, LogLevel.Warning, "Partner '{PartnerId}' resumed by ctl uid={Uid} pid={Pid}")]
    public static partial void ControlPartnerResumed(ILogger logger, string partnerId, uint uid, int pid);

    [LoggerMessage(EventIds.ControlDrainStarted, LogLevel.Warning, "Draining (lame duck) by ctl uid={Uid} pid={Pid}: new sessions and envelopes are refused with DRAINING until restart; {Backlog} envelopes left to deliver")]
    public static partial void ControlDrainStarted(ILogger logger, uint uid, int pid, long backlog);

    [LoggerMessage(EventIds.ControlReloadRequested, LogLevel.Information, "Reload requested by ctl uid={Uid} pid={Pid}")]
    public static partial void ControlReloadRequested(ILogger logger, uint uid, int pid);

    [LoggerMessage(EventIds.ControlRequestFailed, LogLevel.Error, "Control request '{Command}' from uid {Uid} pid {Pid} failed")]
    public static partial void ControlRequestFailed(ILogger logger, string command, uint uid, int pid, Exception exception);

    [LoggerMessage(EventIds.ControlGroupUnknown, LogLevel.Error, "[control] group '{Group}' is not in /etc/group: only root and uid {OwnUid} may use the control socket")]
    public static partial void ControlGroupUnknown(ILogger logger, string group, uint ownUid);
}
