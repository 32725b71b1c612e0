
namespace Relayd.Routing;

/// <summary>
/// Where envelopes whose fate is decided (acknowledged or expired) go: receipts to their senders, and the store told
/// they are settled. Implemented by the receipt dispatch above Routing; maintenance and recovery report into it.
/// </summary>
internal interface ISettlementSink
{
    /// <summary>Takes the settled envelopes (the list may be rearranged; the caller clears it afterwards).</summary>
    void Settle(List<SettledEnvelope> settled);
}
