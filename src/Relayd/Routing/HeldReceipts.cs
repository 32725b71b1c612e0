namespace Relayd.Routing;

/// <summary>
/// Receipts for a sender partner that has no open connection, kept (bounded, oldest dropped first) until one opens:
/// a sender learns its messages' fate even when it was away when it happened. Each keeps its envelope's store reference:
/// the store records them as held (so a restart holds them again) until a session takes them.
/// </summary>
internal sealed class HeldReceipts(int capacity)
{
    private readonly Lock _lock = new();
    private readonly Queue<SettledEnvelope> _items = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _items.Count;
            }
        }
    }

    /// <summary>Keeps the receipts; older ones dropped to stay within capacity are added to <paramref name="dropped"/>.</summary>
    public void Hold(ReadOnlySpan<SettledEnvelope> receipts, List<SettledEnvelope> dropped)
    {
        lock (_lock)
        {
            foreach (ref readonly SettledEnvelope receipt in receipts)
            {
                _items.Enqueue(receipt);
            }

            while (_items.Count > capacity)
            {
                dropped.Add(_items.Dequeue());
            }
        }
    }

    /// <summary>Takes everything held, in order; empty when nothing is.</summary>
    public SettledEnvelope[] TakeAll()
    {
        lock (_lock)
        {
            if (_items.Count == 0)
            {
                return [];
            }

            SettledEnvelope[] all = [.. _items];
            _items.Clear();
            return all;
        }
    }
}
