using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Interop;

/// <summary>
/// A partner's connection as the live routes (key bundles, typing) see it: frames queued for its writer from any
/// thread. Declared here, implemented by the transport's session, so these routes depend on no folder that uses them.
/// </summary>
internal interface ILiveSession
{
    PartnerInfo Partner { get; }

    /// <summary>True once the session is closing: nothing more is routed to it, and what waits for it is dropped.</summary>
    bool IsClosing { get; }

    /// <summary>Queues <paramref name="frame"/> for the session's writer; false when its outbox is full or it is closing.</summary>
    bool TryEnqueueFrame(Frame frame);
}

/// <summary>The open sessions, by partner (the transport's registry).</summary>
internal interface ILiveSessions
{
    /// <summary>A live session of <paramref name="partner"/>; null when it has none.</summary>
    ILiveSession? AnyLiveSessionOf(PartnerInfo partner);
}
