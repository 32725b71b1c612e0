using System.Diagnostics;
using System.Diagnostics.Metrics;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Transport;

/// <summary>
/// One session's Acks that wait for their envelopes to be durable, in the order the envelopes arrived. The reader adds
/// one per accepted envelope; the writer sends those the store has made durable, many per TLS write. Bounded: when
/// <see cref="Capacity"/> are waiting, the reader stops reading the partner until the writer catches up.
/// </summary>
internal sealed class PendingAcks
{
    /// <summary>Acks one session may have waiting: several group commits' worth at full rate, and at most 3 MiB (48 B each) per session.</summary>
    public const int Capacity = 64 * 1024;

    private readonly Lock _lock = new();
    private Pending[] _ring = new Pending[256]; // grows (to Capacity at most) while a session warms up
    private int _head;
    private int _count;
    private TaskCompletionSource? _roomWaiter;

    public int Count => Volatile.Read(ref _count);

    public bool IsFull => Count >= Capacity;

    /// <summary>How many Acks the last <see cref="TakeDurable"/> encoded (for the writer that called it).</summary>
    public int LastTaken { get; private set; }

    public void Add(UInt128 messageId, long acceptedAtMs, bool duplicate, DurableMark durableAt)
    {
        long readAt = Stopwatch.GetTimestamp(); // the Ack's latency starts here (relayd.ack.latency)
        lock (_lock)
        {
            if (_count == _ring.Length)
            {
                var grown = new Pending[_ring.Length * 2];
                for (int i = 0; i < _count; i++)
                {
                    grown[i] = _ring[(_head + i) % _ring.Length];
                }

                _ring = grown;
                _head = 0;
            }

            _ring[(_head + _count) % _ring.Length] = new Pending(messageId, acceptedAtMs, duplicate, durableAt, readAt);
            Volatile.Write(ref _count, _count + 1);
        }
    }

    /// <summary>True when the oldest waiting Ack is durable once the store is durable up to <paramref name="durable"/>.</summary>
    public bool HasDurable(DurableMark durable)
    {
        lock (_lock)
        {
            return _count > 0 && durable.Covers(_ring[_head].DurableAt);
        }
    }

    /// <summary>
    /// Encodes, oldest first, the Acks whose envelopes are durable at <paramref name="durable"/>, as many as fit in
    /// <paramref name="destination"/>. Stops at the first one still waiting, so Acks keep their order. Records each
    /// one's time since <see cref="Add"/> on <paramref name="latency"/>.
    /// </summary>
    /// <remarks>With <paramref name="support"/>, reports the new (not duplicate) envelopes' Acks as one <see cref="Routing.ISupportEvents.EnvelopesDurable"/>.</remarks>
    public int TakeDurable(DurableMark durable, Span<byte> destination, Histogram<double>? latency = null, Routing.SupportEvents? support = null, PartnerInfo? sender = null, long connectionId = 0, TimeProvider? clock = null)
    {
        long now = Stopwatch.GetTimestamp();
        bool report = support is { IsEmpty: false } && sender is not null;
        long nowMs = report ? (clock ?? TimeProvider.System).GetUtcNow().ToUnixTimeMilliseconds() : 0;
        int written = 0;
        int taken = 0;
        int durableEnvelopes = 0;
        DurableMark first = default, through = default;
        TaskCompletionSource? room = null;
        lock (_lock)
        {
            while (_count > 0 && destination.Length - written >= WireFrames.MaxAckFrameBytes)
            {
                ref Pending ack = ref _ring[_head];
                if (!durable.Covers(ack.DurableAt))
                {
                    break;
                }

                written += WireFrames.WriteAck(destination[written..], ack.MessageId, ack.AcceptedAtMs, ack.Duplicate);
                latency?.Record(Stopwatch.GetElapsedTime(ack.ReadTimestamp, now).TotalMilliseconds);
                if (!ack.Duplicate)
                {
                    first = durableEnvelopes == 0 ? ack.DurableAt : first;
                    through = ack.DurableAt;
                    durableEnvelopes++;
                }

                _head = (_head + 1) % _ring.Length;
                Volatile.Write(ref _count, _count - 1);
                taken++;
            }

            LastTaken = taken;

            if (_roomWaiter is not null && _count <= Capacity / 2)
            {
                room = _roomWaiter;
                _roomWaiter = null;
            }
        }

        room?.TrySetResult();
        if (report && durableEnvelopes > 0)
        {
            // One event per batch of Acks, not one per envelope: the trace finds each envelope's by its mark.
            support!.EnvelopesDurable(sender!, connectionId, first, through, durableEnvelopes, nowMs);
        }

        return written;
    }

    /// <summary>Completes when fewer than half of <see cref="Capacity"/> Acks wait.</summary>
    public Task WaitForRoomAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_count <= Capacity / 2)
            {
                return Task.CompletedTask;
            }

            _roomWaiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return _roomWaiter.Task.WaitAsync(cancellationToken);
        }
    }

    private readonly record struct Pending(UInt128 MessageId, long AcceptedAtMs, bool Duplicate, DurableMark DurableAt, long ReadTimestamp);
}
