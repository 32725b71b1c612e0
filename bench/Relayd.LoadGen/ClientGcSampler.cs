namespace Relayd.LoadGen;

/// <summary>
/// This process's garbage collector over a run: bytes allocated, collections by generation and time paused. The
/// client side's allocations per message and its pauses, which stop its senders and its ack and delivery readers alike
/// and so show up in the ack latency the run reports.
/// </summary>
internal sealed class ClientGcSampler
{
    private readonly long _startAllocated = GC.GetTotalAllocatedBytes(precise: false);
    private readonly TimeSpan _startPause = GC.GetTotalPauseDuration();
    private readonly int[] _startCollections = [GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2)];

    public ClientGc? Result { get; private set; }

    public void MarkEnd() => Result = new ClientGc(
        GC.GetTotalAllocatedBytes(precise: false) - _startAllocated,
        (GC.GetTotalPauseDuration() - _startPause).TotalMilliseconds,
        GC.CollectionCount(0) - _startCollections[0],
        GC.CollectionCount(1) - _startCollections[1],
        GC.CollectionCount(2) - _startCollections[2]);
}

/// <summary>What <see cref="ClientGcSampler"/> saw. Collection counts are cumulative: a gen1 collection also counts as gen0.</summary>
public sealed record ClientGc(long AllocatedBytes, double PauseMilliseconds, int Gen0, int Gen1, int Gen2);
