namespace Relayd.Routing;

/// <summary>
/// Everything waiting for one recipient partner: its shard queues and the sessions that drain them. Each shard is
/// drained by exactly one connected session at a time (shard i → session i mod n), which keeps conversation order
/// when a partner holds several connections.
/// </summary>
internal sealed class PartnerMailbox
{
    private readonly Lock _lock = new();
    private readonly List<IDeliveryConsumer> _consumers = [];
    private int _reservedConnections;
    private ReceiveDeclaration _declared = ReceiveDeclaration.Any;

    public PartnerMailbox(int shardCount, RelayLimits limits)
    {
        long perShardBytes = Math.Max(limits.MaxQueuedBytesPerPartner / shardCount, DeliverySlab.DefaultBytes * 2L);
        int perShardEntries = Math.Max(limits.MaxQueuedEnvelopesPerPartner / shardCount, 16);
        Shards = new ShardQueue[shardCount];
        for (int i = 0; i < shardCount; i++)
        {
            Shards[i] = new ShardQueue(i, perShardBytes, perShardEntries, limits.DeliveryWindowEnvelopes, limits.DeliveryWindowBytes);
        }
    }

    public ShardQueue[] Shards { get; }

    /// <summary>
    /// Envelopes waiting for this partner or in flight to it (memory and store only), and when the oldest was accepted
    /// (unix ms; null when none). Takes each shard's lock in turn: for a query (partner health), not per envelope.
    /// </summary>
    public (long Envelopes, long? OldestAcceptedAtMs) Backlog()
    {
        long envelopes = 0;
        long? oldest = null;
        foreach (ShardQueue shard in Shards)
        {
            envelopes += shard.Count + (long)shard.SpilledCount;
            if (shard.OldestAcceptedAtMs is long at && (oldest is null || at < oldest))
            {
                oldest = at;
            }
        }

        return (envelopes, oldest);
    }

    /// <summary>
    /// What the partner's connected sessions declared in Hello they can take, combined (every one must be able to take
    /// an envelope: it may land on any of them). With none connected, what the last ones declared; before any, all.
    /// </summary>
    public ReceiveDeclaration Declared => Volatile.Read(ref _declared);

    /// <summary>
    /// Claims one of the partner's <paramref name="maxConnections"/> connection slots, before the Hello is answered;
    /// false when all are taken. Every successful claim is paired with <see cref="ReleaseConnection"/>.
    /// </summary>
    public bool TryReserveConnection(int maxConnections)
    {
        lock (_lock)
        {
            if (_reservedConnections >= maxConnections)
            {
                return false;
            }

            _reservedConnections++;
            return true;
        }
    }

    public void ReleaseConnection()
    {
        lock (_lock)
        {
            _reservedConnections--;
        }
    }

    /// <summary>Starts delivering to a session (after its Welcome is written).</summary>
    public void Attach(IDeliveryConsumer consumer)
    {
        lock (_lock)
        {
            _consumers.Add(consumer);
            Reassign();
        }
    }

    public void Detach(IDeliveryConsumer consumer)
    {
        lock (_lock)
        {
            if (_consumers.Remove(consumer))
            {
                Reassign();
            }
        }
    }

    /// <summary>Any connected session, chosen by <paramref name="hint"/> (for receipts, which have no order to keep).</summary>
    public IDeliveryConsumer? PickConsumer(int hint)
    {
        lock (_lock)
        {
            return _consumers.Count == 0 ? null : _consumers[(int)((uint)hint % (uint)_consumers.Count)];
        }
    }

    private void Reassign()
    {
        if (_consumers.Count > 0)
        {
            Volatile.Write(ref _declared, ReceiveDeclaration.Combine(_consumers.Select(c => c.Declared)));
        }

        for (int i = 0; i < Shards.Length; i++)
        {
            Shards[i].SetOwner(_consumers.Count == 0 ? null : _consumers[i % _consumers.Count]);
        }
    }
}
