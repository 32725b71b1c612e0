using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>Log lines of the rate limits (event ids 92x). A user id is never logged: the partner names whose user it was.</summary>
internal static partial class RateLimitLog
{
    [LoggerMessage(EventIds.SenderTightened, LogLevel.Warning, "A sender user of partner '{PartnerId}' tightened to {EnvelopesPerSecond} envelopes/s for {Seconds} s (abuse reports)")]
    public static partial void SenderTightened(ILogger logger, string partnerId, long envelopesPerSecond, long seconds);
}
