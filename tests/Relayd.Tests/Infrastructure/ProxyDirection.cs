namespace Relayd.Tests.Infrastructure;

/// <summary>Which way bytes travel through a <see cref="FaultProxy"/>.</summary>
internal enum ProxyDirection
{
    /// <summary>From the connecting client to the target (e.g. a partner's bytes to the relay).</summary>
    ToTarget,

    /// <summary>From the target back to the client.</summary>
    ToClient,
}
