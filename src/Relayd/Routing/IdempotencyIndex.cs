namespace Relayd.Routing;

/// <summary>
/// Remembers the message ids one sender partner used in the dedup window, so that a resend gets the original Ack
/// (as Matrix does with transaction ids) and is not routed twice. Fixed capacity: the oldest ids are forgotten first.
/// Capacity is reserved up front, so steady-state inserts allocate nothing.
/// </summary>
internal sealed class IdempotencyIndex
{
    private readonly Dictionary<UInt128, long> _acceptedAtById;
    private readonly Queue<(UInt128 Id, long AcceptedAtMs)> _byAge;
    private readonly int _capacity;
    private readonly long _windowMs;

    public IdempotencyIndex(int capacity, TimeSpan window)
    {
        _capacity = capacity;
        _windowMs = (long)window.TotalMilliseconds;
        int initial = Math.Min(capacity, 1 << 16);
        _acceptedAtById = new Dictionary<UInt128, long>(initial);
        _byAge = new Queue<(UInt128, long)>(initial);
    }

    /// <summary>Serialises check-route-record for one sender partner, so a concurrent resend cannot slip between.</summary>
    public object SyncRoot { get; } = new();

    public bool TryGet(UInt128 messageId, long nowMs, out long acceptedAtMs)
    {
        Expire(nowMs);
        return _acceptedAtById.TryGetValue(messageId, out acceptedAtMs);
    }

    public void Record(UInt128 messageId, long acceptedAtMs)
    {
        if (_acceptedAtById.Count >= _capacity)
        {
            _acceptedAtById.Remove(_byAge.Dequeue().Id);
        }

        if (_acceptedAtById.TryAdd(messageId, acceptedAtMs))
        {
            _byAge.Enqueue((messageId, acceptedAtMs));
        }
    }

    private void Expire(long nowMs)
    {
        while (_byAge.TryPeek(out var oldest) && nowMs - oldest.AcceptedAtMs > _windowMs)
        {
            _byAge.Dequeue();
            _acceptedAtById.Remove(oldest.Id);
        }
    }
}
