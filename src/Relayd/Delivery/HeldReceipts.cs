namespace Relayd.Delivery;

/// <summary>
/// Receipts for a sender partner that has no open connection, kept (bounded, oldest dropped first) until one opens:
/// a sender learns its messages' fate even when it was away when it happened.
/// </summary>
internal sealed class HeldReceipts(int capacity)
{
    private readonly Lock _lock = new();
    private readonly Queue<ReceiptItem> _items = new();

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

    /// <summary>Keeps the receipts; returns how many older ones had to be dropped to stay within capacity.</summary>
    public int Hold(ReadOnlySpan<SettledEnvelope> receipts)
    {
        int dropped = 0;
        lock (_lock)
        {
            foreach (ref readonly SettledEnvelope receipt in receipts)
            {
                _items.Enqueue(receipt.Receipt);
            }

            while (_items.Count > capacity)
            {
                _items.Dequeue();
                dropped++;
            }
        }

        return dropped;
    }

    /// <summary>Takes everything held, in order; empty when nothing is.</summary>
    public ReceiptItem[] TakeAll()
    {
        lock (_lock)
        {
            if (_items.Count == 0)
            {
                return [];
            }

            ReceiptItem[] all = [.. _items];
            _items.Clear();
            return all;
        }
    }
}
