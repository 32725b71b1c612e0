using System.Buffers;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>
/// One shard of a recipient partner's mailbox: an ordered, bounded queue of encoded Deliver frames. Every
/// conversation (recipient partner, recipient user) maps to exactly one shard, so FIFO here is conversation order.
/// </summary>
/// <remarks>
/// The queue is memory only, a cache over the envelope store: every envelope is in the store; entries live in
/// memory from <see cref="TryAppend"/> until the recipient acknowledges them, and a session that disconnects leaves
/// its unacknowledged entries here for the next session (at-least-once). Memory is bounded by the slabs the shard
/// may hold (<c>maxSlabBytes</c>); beyond that envelopes stay in the store only ("spilled", a cursor of
/// <see cref="StoreRef"/>s) and the backlog loader reads them back in order as memory frees, so a backlog of any
/// size costs a few fields here.
/// Delivery ids are <c>(shard index &lt;&lt; 48) | sequence</c>, opaque to partners.
/// </remarks>
internal sealed class ShardQueue
{
    private const int SequenceBits = 48;
    private const ulong SequenceMask = (1UL << SequenceBits) - 1;
    private const int MinSlabRoomBytes = 64 * 1024; // at the slab cap, the last slab still takes envelopes while this much is free

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
    private bool _spilled;           // envelopes from _spillFrom to _spillTail are in the store only
    private StoreRef _spillFrom;
    private StoreRef _spillTail;
    private int _spilledCount;
    private long _spillFromAcceptedAtMs; // when the first envelope left in the store only was accepted (at most)

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

    /// <summary>Envelopes of this shard that are only in the store (the memory bound was reached), not yet loaded back.</summary>
    public int SpilledCount
    {
        get
        {
            lock (_lock)
            {
                return _spilledCount;
            }
        }
    }

    /// <summary>
    /// When the oldest envelope waiting or in flight was accepted (unix ms), null when none: what partner health reports
    /// as the backlog's age. The head in memory is the oldest (what is in the store only came after it); with memory
    /// empty and envelopes in the store only (briefly, until the loader catches up), the last loaded one's time.
    /// </summary>
    public long? OldestAcceptedAtMs
    {
        get
        {
            lock (_lock)
            {
                return _count > 0 ? _entries[_head].AcceptedAtMs : _spilled ? _spillFromAcceptedAtMs : null;
            }
        }
    }

    /// <summary>Whether memory has room for more envelopes (a free slab, or 64 KiB left in the last one).</summary>
    public bool HasRoom
    {
        get
        {
            lock (_lock)
            {
                return _count < _maxEntries
                    && (_slabBytes + DeliverySlab.DefaultBytes <= _maxSlabBytes || (_tail is not null && _tail.Free >= MinSlabRoomBytes));
            }
        }
    }

    /// <summary>True while envelopes of this shard wait in the store only; the backlog loader brings them back in order.</summary>
    public bool IsSpilled => Volatile.Read(ref _spilled);

    public static int ShardOf(ulong deliveryId) => (int)(deliveryId >> SequenceBits);

    /// <summary>
    /// Appends the envelope to the store and, while memory allows, encodes a Deliver frame for it into the shard: the
    /// one copy of the ciphertext on its way to the recipient (from the sender's input pipe into a slab, which the
    /// recipient's session writes to its TLS stream directly). Both happen under the shard lock, so store order is
    /// queue order: the spill cursor and recovery's conversation order rely on it. Beyond the memory bound the
    /// envelope stays in the store only, and every later one of this shard too until the backlog loader has caught up.
    /// </summary>
    /// <returns>The store's answer; anything but <see cref="AppendResult.Appended"/> leaves the shard unchanged.</returns>
    public AppendResult TryAppend(IEnvelopeStore store, in ReadOnlySequence<byte> frame, in EnvelopeHeader header, PartnerInfo? sender, long acceptedAtMs, long expiresAtMs, out DurableMark durableAt) =>
        TryAppend(store, frame, header, sender, acceptedAtMs, expiresAtMs, UncheckedConsent, out durableAt, default);

    /// <inheritdoc cref="TryAppend(IEnvelopeStore, in ReadOnlySequence{byte}, in EnvelopeHeader, PartnerInfo?, long, long, out DurableMark)"/>
    /// <param name="consentEpoch">The consent policy's <see cref="Admission.IConsentPolicy.RevokeEpoch"/> read before the envelope was admitted.</param>
    /// <param name="report">Where the accepted envelope is reported: under the shard lock, so before any session can take it (its Delivered follows its Accepted).</param>
    public AppendResult TryAppend(IEnvelopeStore store, in ReadOnlySequence<byte> frame, in EnvelopeHeader header, PartnerInfo? sender, long acceptedAtMs, long expiresAtMs, int consentEpoch, out DurableMark durableAt, in Routing.AcceptedReport report)
    {
        IDeliveryConsumer? owner;
        lock (_lock)
        {
            AppendResult result = store.TryAppend(frame, acceptedAtMs, expiresAtMs, out StoreRef reference, out durableAt);
            if (result != AppendResult.Appended)
            {
                return result;
            }

            if (_spilled || !TryInsertLocked(frame, header, sender, acceptedAtMs, expiresAtMs, reference, consentEpoch))
            {
                SpillLocked(reference, acceptedAtMs);
                report.Report(frame, header, sender, _shardIndex, logOnly: true, acceptedAtMs, durableAt);
                return AppendResult.Appended;
            }

            report.Report(frame, header, sender, _shardIndex, logOnly: false, acceptedAtMs, durableAt);

            owner = _owner;
        }

        owner?.OnDeliveriesAvailable();
        return AppendResult.Appended;
    }

    /// <summary>Takes an unsettled envelope found by recovery: into memory while it fits, else left in the store.</summary>
    public void Restore(in StoredEnvelope envelope, in EnvelopeHeader header, PartnerInfo? sender)
    {
        lock (_lock)
        {
            if (_spilled || !TryInsertLocked(envelope.Frame, header, sender, envelope.AcceptedAtMs, envelope.ExpiresAtMs, envelope.Ref, UncheckedConsent))
            {
                SpillLocked(envelope.Ref, envelope.AcceptedAtMs);
            }
        }
    }

    /// <summary>Where the backlog loader resumes reading the store for this shard; false when nothing is spilled.</summary>
    public bool TryGetSpillCursor(out StoreRef from)
    {
        lock (_lock)
        {
            from = _spillFrom;
            return _spilled;
        }
    }

    /// <summary>
    /// The backlog loader found this shard's envelope (in store order): loads it into memory if it fits, or passes
    /// over it when <paramref name="skip"/> (expired).
    /// </summary>
    public SpillLoad TryLoadSpilled(in StoredEnvelope envelope, in EnvelopeHeader header, PartnerInfo? sender, bool skip)
    {
        IDeliveryConsumer? owner;
        lock (_lock)
        {
            if (!_spilled || envelope.Ref < _spillFrom)
            {
                return SpillLoad.NotSpilled;
            }

            if (!skip && !TryInsertLocked(envelope.Frame, header, sender, envelope.AcceptedAtMs, envelope.ExpiresAtMs, envelope.Ref, UncheckedConsent))
            {
                _spillFrom = envelope.Ref;
                _spillFromAcceptedAtMs = envelope.AcceptedAtMs;
                return SpillLoad.NoRoom;
            }

            _spilledCount--;
            _spillFrom = envelope.Next;
            _spillFromAcceptedAtMs = envelope.AcceptedAtMs; // the next one was accepted at or after it
            if (envelope.Ref >= _spillTail)
            {
                Volatile.Write(ref _spilled, false); // caught up: appends go to memory again
            }

            owner = _owner;
        }

        if (!skip)
        {
            owner?.OnDeliveriesAvailable();
        }

        return SpillLoad.Loaded;
    }

    /// <summary>
    /// Settles every envelope held in memory whose expiry has passed and that is not out to a session (retention for
    /// a recipient that is away). Their EXPIRED receipts go into <paramref name="settled"/>.
    /// </summary>
    public void ExpireDue(long nowMs, List<SettledEnvelope> settled)
    {
        lock (_lock)
        {
            for (int i = 0; i < _count; i++)
            {
                ref Entry entry = ref _entries[(_head + i) % _entries.Length];
                if (!entry.Acked && !entry.Sent && entry.ExpiresAtMs <= nowMs)
                {
                    entry.Acked = true;
                    settled.Add(SettledEnvelope.Expired(entry.Sender, entry.MessageId, entry.StoreRef));
                }
            }

            AdvanceHead();
        }
    }

    /// <summary>
    /// Settles every envelope held in memory and not out to a session whose sender user or recipient user no longer
    /// has consent for this pair of partners (checked once per <see cref="Admission.IConsentPolicy.RevokeEpoch"/>):
    /// a revoke stops what is queued at once, also while the recipient is away. Their REFUSED (NOT_OPTED_IN) receipts
    /// go into <paramref name="settled"/>. Envelopes in the store only are checked when they are taken.
    /// </summary>
    public void RefuseRevoked(Admission.IConsentPolicy consent, PartnerInfo recipient, int epoch, List<SettledEnvelope> settled)
    {
        lock (_lock)
        {
            for (int i = 0; i < _count; i++)
            {
                ref Entry entry = ref _entries[(_head + i) % _entries.Length];
                if (!entry.Acked && !entry.Sent && entry.ConsentEpoch != epoch && !StillConsented(ref entry, consent, recipient, epoch))
                {
                    entry.Acked = true;
                    settled.Add(SettledEnvelope.NotOptedIn(entry.Sender, entry.MessageId, entry.StoreRef));
                }
            }

            AdvanceHead();
        }
    }

    /// <summary>Deliveries handed to <paramref name="consumer"/> and not yet freed (0 when it does not own this shard); for operators.</summary>
    public int InFlightFor(IDeliveryConsumer consumer)
    {
        lock (_lock)
        {
            return ReferenceEquals(_owner, consumer) ? _sent : 0;
        }
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
    public bool TryTakeRange(IDeliveryConsumer consumer, long nowMs, List<SettledEnvelope> receipts, out DeliveryRange range) =>
        TryTakeRange(consumer, nowMs, Admission.NoConsentRequired.Instance, null, receipts, out range);

    /// <summary>
    /// Takes the next run of consecutive deliveries for <paramref name="consumer"/>, within the delivery window.
    /// Expired envelopes met on the way are dropped and reported into <paramref name="receipts"/>, and so are those
    /// whose sender user or recipient user revoked consent since they were admitted (REFUSED, NOT_OPTED_IN): each
    /// entry admitted under an older <see cref="Admission.IConsentPolicy.RevokeEpoch"/> is checked again, once.
    /// </summary>
    /// <param name="recipient">The partner this shard belongs to (whose users receive).</param>
    public bool TryTakeRange(IDeliveryConsumer consumer, long nowMs, Admission.IConsentPolicy consent, PartnerInfo? recipient, List<SettledEnvelope> receipts, out DeliveryRange range) =>
        TryTakeRange(consumer, nowMs, consent, recipient, receipts, null, out range);

    /// <inheritdoc cref="TryTakeRange(IDeliveryConsumer, long, Admission.IConsentPolicy, PartnerInfo?, List{SettledEnvelope}, out DeliveryRange)"/>
    /// <param name="taken">When not null, receives each delivery of the range (for the support events); cleared first.</param>
    public bool TryTakeRange(IDeliveryConsumer consumer, long nowMs, Admission.IConsentPolicy consent, PartnerInfo? recipient, List<SettledEnvelope> receipts, List<TakenDelivery>? taken, out DeliveryRange range)
    {
        taken?.Clear();
        range = default;
        bool checkConsent = consent.Required && recipient is not null;
        int epoch = checkConsent ? consent.RevokeEpoch : 0;
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
                    receipts.Add(SettledEnvelope.Expired(entry.Sender, entry.MessageId, entry.StoreRef));
                    _sent++;
                    continue;
                }

                if (checkConsent && entry.ConsentEpoch != epoch && !StillConsented(ref entry, consent, recipient!, epoch))
                {
                    entry.Acked = true;
                    receipts.Add(SettledEnvelope.NotOptedIn(entry.Sender, entry.MessageId, entry.StoreRef));
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
            int count = 0;
            while (_sent < _count && _sent < _windowEnvelopes && _sentBytes < _windowBytes)
            {
                ref Entry entry = ref _entries[(_head + _sent) % _entries.Length];
                if (entry.Acked || entry.ExpiresAtMs <= nowMs || !ReferenceEquals(entry.Slab, slab) || entry.Offset != end
                    || (checkConsent && entry.ConsentEpoch != epoch && !StillConsented(ref entry, consent, recipient!, epoch)))
                {
                    break; // a revoked one is settled by the next call's skip loop
                }

                entry.Sent = true;
                if (!entry.EverSent)
                {
                    entry.EverSent = true;
                    entry.FirstSentAtMs = nowMs;
                }

                taken?.Add(new TakenDelivery(entry.Sender, entry.MessageId, DeliveryIdOf(_headSequence + (ulong)_sent)));
                end += entry.Length;
                _sentBytes += entry.Length;
                _sent++;
                count++;
            }

            slab.WritesInProgress++;
            range = new DeliveryRange(slab, offset, end - offset, count, _epoch);
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
    public AckResult Acknowledge(ulong deliveryId, List<SettledEnvelope> receipts) => Acknowledge(deliveryId, receipts, out _, out _);

    /// <inheritdoc cref="Acknowledge(ulong, List{SettledEnvelope})"/>
    /// <param name="acceptedAtMs">When the relay accepted the acknowledged envelope (0 unless <see cref="AckResult.Acknowledged"/>).</param>
    /// <param name="firstSentAtMs">When this run of the relay first took it for a Deliver (0 unless <see cref="AckResult.Acknowledged"/>).</param>
    public AckResult Acknowledge(ulong deliveryId, List<SettledEnvelope> receipts, out long acceptedAtMs, out long firstSentAtMs)
    {
        acceptedAtMs = 0;
        firstSentAtMs = 0;
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
            acceptedAtMs = entry.AcceptedAtMs;
            firstSentAtMs = entry.FirstSentAtMs;
            receipts.Add(SettledEnvelope.Delivered(entry.Sender, entry.MessageId, entry.StoreRef));
            AdvanceHead();
            owner = _owner;
        }

        // The window may have opened.
        owner?.OnDeliveriesAvailable();
        return AckResult.Acknowledged;
    }

    /// <summary>
    /// Whether both users of the queued envelope still have consent for this pair of partners (read from the Deliver
    /// frame in the slab: no allocation); if so the entry is marked checked at <paramref name="epoch"/>. An envelope
    /// whose sender partner is no longer approved is judged by its recipient user alone.
    /// </summary>
    /// <summary>
    /// Copies the two user ids of message <paramref name="messageId"/> of <paramref name="sender"/> while this shard
    /// holds it in memory and unacknowledged (for <c>ctl trace --show-users</c>); false otherwise. A scan under the
    /// shard's lock: an admin's command, not the data path.
    /// </summary>
    public bool TryCopyUsers(UInt128 messageId, PartnerInfo sender, out byte[] senderUser, out byte[] recipientUser)
    {
        lock (_lock)
        {
            for (int i = 0; i < _count; i++)
            {
                ref Entry entry = ref _entries[(_head + i) % _entries.Length];
                if (entry.MessageId == messageId && ReferenceEquals(entry.Sender, sender) && !entry.Acked)
                {
                    byte[] buffer = entry.Slab.Buffer;
                    senderUser = buffer.AsSpan(entry.Offset + entry.SenderUserAt, entry.SenderUserLength).ToArray();
                    recipientUser = buffer.AsSpan(entry.Offset + entry.RecipientUserAt, entry.RecipientUserLength).ToArray();
                    return true;
                }
            }
        }

        senderUser = recipientUser = [];
        return false;
    }

    private static bool StillConsented(ref Entry entry, Admission.IConsentPolicy consent, PartnerInfo recipient, int epoch)
    {
        byte[] buffer = entry.Slab.Buffer;
        var recipientUser = new ReadOnlySequence<byte>(buffer, entry.Offset + entry.RecipientUserAt, entry.RecipientUserLength);
        bool consented = entry.Sender is { } sender
            ? consent.OptedIn(sender, new ReadOnlySequence<byte>(buffer, entry.Offset + entry.SenderUserAt, entry.SenderUserLength), recipient)
              && consent.OptedIn(recipient, recipientUser, sender)
            : consent.OptedIn(recipient, recipientUser, recipient);
        if (consented)
        {
            entry.ConsentEpoch = epoch;
        }

        return consented;
    }

    /// <summary>The consent epoch of an entry whose admission is unknown (recovered, loaded back): checked at its first take.</summary>
    private const int UncheckedConsent = -1;

    /// <summary>Encodes the Deliver frame into a slab; false when the shard's memory bound is reached.</summary>
    private bool TryInsertLocked(in ReadOnlySequence<byte> frame, in EnvelopeHeader header, PartnerInfo? sender, long acceptedAtMs, long expiresAtMs, StoreRef reference, int consentEpoch)
    {
        FieldSlice envelope = header.Envelope;
        UInt128 messageId = header.MessageId;
        if (_count >= _maxEntries)
        {
            return false;
        }

        ulong deliveryId = DeliveryIdOf(_headSequence + (ulong)_count);
        int size = WireFrames.DeliverFrameSize(envelope.Length, deliveryId, acceptedAtMs);
        DeliverySlab? slab = SlabWithRoom(size);
        if (slab is null)
        {
            return false;
        }

        Span<byte> destination = slab.Buffer.AsSpan(slab.Written, size);
        int n = WireFrames.WriteDeliverHeader(destination, envelope.Length, deliveryId, acceptedAtMs);
        int envelopeAt = n;
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
            Sender = sender,
            ExpiresAtMs = expiresAtMs,
            AcceptedAtMs = acceptedAtMs,
            StoreRef = reference,
            ConsentEpoch = consentEpoch,
            SenderUserAt = envelopeAt + (int)(header.SenderUser.Offset - envelope.Offset),
            SenderUserLength = header.SenderUser.Length,
            RecipientUserAt = envelopeAt + (int)(header.RecipientUser.Offset - envelope.Offset),
            RecipientUserLength = header.RecipientUser.Length,
        };
        _count++;
        slab.Written += size;
        slab.LiveEntries++;
        return true;
    }

    private ulong DeliveryIdOf(ulong sequence) => ((ulong)_shardIndex << SequenceBits) | (sequence & SequenceMask);

    private void SpillLocked(StoreRef position, long acceptedAtMs)
    {
        if (!_spilled)
        {
            Volatile.Write(ref _spilled, true);
            _spillFrom = position;
            _spillFromAcceptedAtMs = acceptedAtMs;
        }

        _spillTail = position;
        _spilledCount++;
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
        public PartnerInfo? Sender;
        public long ExpiresAtMs;
        public long AcceptedAtMs; // for the acknowledged event's latency and the backlog's oldest age
        public long FirstSentAtMs; // when this relay first took it for a Deliver: evidence's delivered_at_ms
        public StoreRef StoreRef;
        public bool Acked;
        public bool Sent;
        public bool EverSent;

        // Opt-in: the consent epoch it was last checked at, and where its users are inside the Deliver frame.
        public int ConsentEpoch;
        public int SenderUserAt;
        public int SenderUserLength;
        public int RecipientUserAt;
        public int RecipientUserLength;
    }
}
