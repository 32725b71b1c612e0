using System.Buffers;
using Relayd.Delivery;
using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// One shard of a recipient partner's mailbox: an ordered, bounded queue of encoded Deliver frames. Every
/// conversation (recipient partner, recipient user) maps to exactly one shard, so FIFO here is conversation order.
/// </summary>
/// <remarks>
/// Entries live from <see cref="TryAppend"/> until the recipient acknowledges them; a session that disconnects
/// leaves its unacknowledged entries here for the next session (at-least-once). Memory is bounded by the slabs the
/// shard may hold (<c>maxSlabBytes</c>), not by how many messages wait.
/// Delivery ids are <c>(shard index &lt;&lt; 48) | sequence</c>, opaque to partners.
/// </remarks>
internal sealed class ShardQueue
{
    private const int SequenceBits = 48;
    private const ulong SequenceMask = (1UL << SequenceBits) - 1;

    private readonly Lock _lock = new();
    private readonly int _shardIndex;
    private readonly long _maxSlabBytes;
    private readonly int _maxEntries;
    private readonly int _windowEnvelopes;
    private readonly long _windowBytes;

    private Entry[] _entries = new Entry[256];
    private int _head;           // ring index of the oldest unfreed entry
    private int _count;          // unfreed entries
    private ulong _headSequence = 1;
    private int _sent;           // entries from head that were handed to the current owner
    private long _sentBytes;
    private DeliverySlab? _tail;
    private long _slabBytes;
    private IDeliveryConsumer? _owner;
    private int _epoch;

    public ShardQueue(int shardIndex, long maxSlabBytes, int maxEntries, int windowEnvelopes, long windowBytes)
    {
        _shardIndex = shardIndex;
        _maxSlabBytes = maxSlabBytes;
        _maxEntries = maxEntries;
        _windowEnvelopes = windowEnvelopes;
        _windowBytes = windowBytes;
    }

    /// <summary>Envelopes waiting or in flight (not yet acknowledged).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Bytes of slabs this shard holds now.</summary>
    public long SlabBytes
    {
        get
        {
            lock (_lock)
            {
                return _slabBytes;
            }
        }
    }

    public static int ShardOf(ulong deliveryId) => (int)(deliveryId >> SequenceBits);

    /// <summary>
    /// Encodes a Deliver frame for the envelope into the shard. This is the one copy of the ciphertext on its way
    /// from the sender's socket to the recipient's: from the sender's input pipe into the slab; the session writes
    /// the slab to the recipient's TLS stream directly.
    /// </summary>
    public AppendResult TryAppend(in ReadOnlySequence<byte> frame, FieldSlice envelope, UInt128 messageId, int senderPartner, long acceptedAtMs, long expiresAtMs)
    {
        IDeliveryConsumer? owner;
        lock (_lock)
        {
            if (_count >= _maxEntries)
            {
                return AppendResult.QueueFull;
            }

            ulong sequence = _headSequence + (ulong)_count;
            ulong deliveryId = ((ulong)_shardIndex << SequenceBits) | (sequence & SequenceMask);
            int size = WireFrames.DeliverFrameSize(envelope.Length, deliveryId, acceptedAtMs);
            DeliverySlab? slab = SlabWithRoom(size);
            if (slab is null)
            {
                return AppendResult.QueueFull;
            }

            Span<byte> destination = slab.Buffer.AsSpan(slab.Written, size);
            int n = WireFrames.WriteDeliverHeader(destination, envelope.Length, deliveryId, acceptedAtMs);
            frame.Slice(envelope.Offset, envelope.Length).CopyTo(destination[n..]);
            n += envelope.Length;
            WireFrames.WriteDeliverTrailer(destination[n..], acceptedAtMs);

            if (_count == _entries.Length)
            {
                GrowRing();
            }

            _entries[(_head + _count) % _entries.Length] = new Entry
            {
                Slab = slab,
                Offset = slab.Written,
                Length = size,
                MessageId = messageId,
                SenderPartner = senderPartner,
                ExpiresAtMs = expiresAtMs,
            };
            _count++;
            slab.Written += size;
            slab.LiveEntries++;
            owner = _owner;
        }

        owner?.OnDeliveriesAvailable();
        return AppendResult.Appended;
    }

    /// <summary>Makes <paramref name="consumer"/> the session this shard delivers to (null: none connected).</summary>
    /// <remarks>Everything not yet acknowledged is delivered again to the new owner, in order.</remarks>
    public void SetOwner(IDeliveryConsumer? consumer)
    {
        lock (_lock)
        {
            if (ReferenceEquals(_owner, consumer))
            {
                return;
            }

            _owner = consumer;
            _epoch++;
            for (int i = 0; i < _sent; i++)
            {
                _entries[(_head + i) % _entries.Length].Sent = false;
            }

            _sent = 0;
            _sentBytes = 0;
        }

        consumer?.OnDeliveriesAvailable();
    }

    /// <summary>
    /// Takes the next run of consecutive deliveries for <paramref name="consumer"/>, within the delivery window.
    /// Expired envelopes met on the way are dropped and reported into <paramref name="receipts"/>.
    /// </summary>
    public bool TryTakeRange(IDeliveryConsumer consumer, long nowMs, List<(int SenderPartner, ReceiptItem Item)> receipts, out DeliveryRange range)
    {
        range = default;
        lock (_lock)
        {
            if (!ReferenceEquals(_owner, consumer))
            {
                return false;
            }

            // Skip what is already acknowledged or expired.
            while (_sent < _count)
            {
                ref Entry entry = ref _entries[(_head + _sent) % _entries.Length];
                if (entry.Acked)
                {
                    _sent++;
                    continue;
                }

                if (entry.ExpiresAtMs <= nowMs)
                {
                    entry.Acked = true;
                    receipts.Add((entry.SenderPartner, new ReceiptItem(entry.MessageId, ReceiptStatus.ExpiredUndelivered, ErrorCode.Expired)));
                    _sent++;
                    continue;
                }

                break;
            }

            AdvanceHead();
            if (_sent >= _count || _sent >= _windowEnvelopes || _sentBytes >= _windowBytes)
            {
                return false;
            }

            ref Entry first = ref _entries[(_head + _sent) % _entries.Length];
            DeliverySlab slab = first.Slab;
            int offset = first.Offset;
            int end = offset;
            int taken = 0;
            while (_sent < _count && _sent < _windowEnvelopes && _sentBytes < _windowBytes)
            {
                ref Entry entry = ref _entries[(_head + _sent) % _entries.Length];
                if (entry.Acked || entry.ExpiresAtMs <= nowMs || !ReferenceEquals(entry.Slab, slab) || entry.Offset != end)
                {
                    break;
                }

                entry.Sent = true;
                entry.EverSent = true;
                end += entry.Length;
                _sentBytes += entry.Length;
                _sent++;
                taken++;
            }

            slab.WritesInProgress++;
            range = new DeliveryRange(slab, offset, end - offset, taken, _epoch);
            return true;
        }
    }

    /// <summary>Ends a write begun by <see cref="TryTakeRange"/>; the slab may go back to the pool.</summary>
    public void CompleteWrite(in DeliveryRange range)
    {
        lock (_lock)
        {
            range.Slab.WritesInProgress--;
            ReleaseIfUnused(range.Slab);
        }
    }

    /// <summary>Records the recipient's acknowledgement of one delivery; a DELIVERED receipt goes into <paramref name="receipts"/>.</summary>
    public AckResult Acknowledge(ulong deliveryId, List<(int SenderPartner, ReceiptItem Item)> receipts)
    {
        ulong sequence = deliveryId & SequenceMask;
        IDeliveryConsumer? owner;
        lock (_lock)
        {
            if (sequence < _headSequence)
            {
                return AckResult.AlreadyAcknowledged;
            }

            ulong index = sequence - _headSequence;
            if (index >= (ulong)_count)
            {
                return AckResult.UnknownDelivery;
            }

            ref Entry entry = ref _entries[(_head + (int)index) % _entries.Length];
            if (!entry.EverSent)
            {
                return AckResult.UnknownDelivery;
            }

            if (entry.Acked)
            {
                return AckResult.AlreadyAcknowledged;
            }

            entry.Acked = true;
            receipts.Add((entry.SenderPartner, new ReceiptItem(entry.MessageId, ReceiptStatus.Delivered, ErrorCode.Unspecified)));
            AdvanceHead();
            owner = _owner;
        }

        // The window may have opened.
        owner?.OnDeliveriesAvailable();
        return AckResult.Acknowledged;
    }

    private void AdvanceHead()
    {
        while (_count > 0)
        {
            ref Entry entry = ref _entries[_head];
            if (!entry.Acked)
            {
                return;
            }

            if (_sent > 0)
            {
                _sent--;
                if (entry.Sent)
                {
                    _sentBytes -= entry.Length;
                }
            }

            DeliverySlab slab = entry.Slab;
            slab.LiveEntries--;
            entry = default;
            _head = (_head + 1) % _entries.Length;
            _count--;
            _headSequence++;
            ReleaseIfUnused(slab);
        }
    }

    private DeliverySlab? SlabWithRoom(int size)
    {
        if (_tail is not null && _tail.Free >= size)
        {
            return _tail;
        }

        if (_tail is { IsReleasable: true } && _tail.Capacity >= size)
        {
            _tail.Written = 0; // nothing refers to it any more: reuse instead of renting
            return _tail;
        }

        int wanted = Math.Max(size, DeliverySlab.DefaultBytes);
        if (_slabBytes + wanted > _maxSlabBytes)
        {
            return null;
        }

        DeliverySlab? previous = _tail;
        _tail = DeliverySlab.Rent(size);
        _slabBytes += _tail.Capacity;
        if (previous is not null)
        {
            ReleaseIfUnused(previous);
        }

        return _tail;
    }

    private void ReleaseIfUnused(DeliverySlab slab)
    {
        if (slab.IsReleasable && !ReferenceEquals(slab, _tail) && !slab.IsPooled)
        {
            _slabBytes -= slab.Capacity;
            slab.Return();
        }
    }

    private void GrowRing()
    {
        var grown = new Entry[_entries.Length * 2];
        for (int i = 0; i < _count; i++)
        {
            grown[i] = _entries[(_head + i) % _entries.Length];
        }

        _entries = grown;
        _head = 0;
    }

    private struct Entry
    {
        public DeliverySlab Slab;
        public int Offset;
        public int Length;
        public UInt128 MessageId;
        public int SenderPartner;
        public long ExpiresAtMs;
        public bool Acked;
        public bool Sent;
        public bool EverSent;
    }
}
