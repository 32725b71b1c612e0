using Microsoft.Extensions.Logging;
using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Diagnostics;

/// <summary>
/// Log lines of the live interop routes (key bundles, typing, capabilities): refusals only, throttled like envelope
/// refusals. Never a bundle's bytes, a user id or a typing notice.
/// </summary>
internal static partial class RelayLog
{
    public static void LiveFrameRefused(ILogger logger, string frame, string partnerId, ErrorCode code, string detail) =>
        LiveFrameRefused(logger, frame, partnerId, ProtoNames.Of(code), detail);

    [LoggerMessage(EventIds.LiveFrameRefused, LogLevel.Warning, "{Frame} from partner {PartnerId} refused with {Code}: {Detail}")]
    private static partial void LiveFrameRefused(ILogger logger, string frame, string partnerId, string code, string detail);
}
