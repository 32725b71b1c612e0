namespace Relayd.Storage;

/// <summary>
/// Where an envelope is in the store that accepted it: opaque outside that store, which alone reads its value.
/// References of one store order as their envelopes were appended (a spilled shard's cursor relies on it);
/// <c>default</c> is no envelope.
/// </summary>
internal readonly record struct StoreRef : IComparable<StoreRef>
{
    private readonly ulong _value;

    /// <summary>Made by a store from its own position of the envelope (never 0).</summary>
    internal StoreRef(ulong value) => _value = value;

    /// <summary>The store's own position; only the store that made the reference reads it.</summary>
    internal ulong Value => _value;

    public bool IsNone => _value == 0;

    public int CompareTo(StoreRef other) => _value.CompareTo(other._value);

    public static bool operator <(StoreRef left, StoreRef right) => left._value < right._value;

    public static bool operator >(StoreRef left, StoreRef right) => left._value > right._value;

    public static bool operator <=(StoreRef left, StoreRef right) => left._value <= right._value;

    public static bool operator >=(StoreRef left, StoreRef right) => left._value >= right._value;

    public override string ToString() => $"store ref {_value:x}";
}

/// <summary>
/// A point in a store's durability order: an envelope's Ack waits until <see cref="IEnvelopeStore.Durable"/> has
/// reached the mark its append returned. Opaque outside the store; <c>default</c> (<see cref="None"/>) is durable already.
/// </summary>
internal readonly record struct DurableMark : IComparable<DurableMark>
{
    private readonly ulong _value;

    internal DurableMark(ulong value) => _value = value;

    /// <summary>Reached by every store state: nothing to wait for.</summary>
    public static DurableMark None => default;

    internal ulong Value => _value;

    /// <summary>Whether the store, durable up to this mark, has made <paramref name="mark"/> durable.</summary>
    public bool Covers(DurableMark mark) => mark._value <= _value;

    public int CompareTo(DurableMark other) => _value.CompareTo(other._value);

    public static bool operator <(DurableMark left, DurableMark right) => left._value < right._value;

    public static bool operator >(DurableMark left, DurableMark right) => left._value > right._value;

    public static bool operator <=(DurableMark left, DurableMark right) => left._value <= right._value;

    public static bool operator >=(DurableMark left, DurableMark right) => left._value >= right._value;
}
