using System.Net;
using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>Hello / Welcome log lines: event ids 350-379. Error codes by their proto names.</summary>
internal static partial class RelayLog
{
    [LoggerMessage(EventIds.HelloTimedOut, LogLevel.Warning, "Session {ConnectionId} of partner {PartnerId} from {Remote}: no Hello within {TimeoutMs} ms of connecting; closed with HANDSHAKE_TIMEOUT")]
    public static partial void HelloTimedOut(ILogger logger, long connectionId, string partnerId, EndPoint? remote, double timeoutMs);
}
