namespace Relayd.Routing;

/// <summary>Where receipts for a sender partner go: one of its connected sessions, which writes them out batched.</summary>
internal interface IReceiptSink
{
    /// <summary>Queues receipts for the partner; from any thread, without blocking on the connection.</summary>
    void EnqueueReceipts(ReadOnlySpan<SettledEnvelope> receipts);

    /// <summary>The session's connection id, for the support events (0: not a session).</summary>
    long ConnectionId => 0;
}
