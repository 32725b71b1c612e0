using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Wal;

namespace Relayd.Storage.WalStore;

/// <summary>
/// The envelope store on the write-ahead log: accepted envelopes, which of them are settled, and whether there is
/// room for more (docs/wal.md, "How the relay uses the log"). A <see cref="StoreRef"/> is an envelope record's
/// <see cref="WalPosition"/>; a <see cref="DurableMark"/> is the end of its record.
/// </summary>
internal sealed partial class WalEnvelopeStore : IEnvelopeStore
{
    private readonly WriteAheadLog _log;
    private readonly StorageOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<IDurabilityListener> _durabilityListeners = new();
    private readonly Lock _settledLock = new();
    private readonly List<ulong> _unwrittenSettled = [];
    private readonly List<HeldReceiptEntry> _unwrittenHeld = [];
    private byte[] _settledPayload = [];
    private volatile bool _full;
    private int _spaceCheckDue;      // 1: an append took a new segment; the disk is probed once the caller is out of its locks
    private ulong _appendSegment;

    private WalEnvelopeStore(WriteAheadLog log, SettlementsFound settlements, StorageOptions options, ILogger logger)
    {
        _log = log;
        SettlementsFound = settlements;
        _options = options;
        _logger = logger;
        log.Committed += OnCommitted;
    }

    public event Action<Exception>? Failed
    {
        add => _log.Failed += value;
        remove => _log.Failed -= value;
    }

    /// <summary>
    /// The log itself, for the store's own parts, the tests that look at its segments and the benchmarks; the relay
    /// goes through <see cref="IEnvelopeStore"/>.
    /// </summary>
    internal WriteAheadLog Log => _log;

    /// <summary>What the open scan found settled and held, for recovery (which then drops it).</summary>
    internal SettlementsFound? SettlementsFound { get; set; }

    /// <summary>Envelope records settled before this start (read by recovery); they are never delivered again.</summary>
    internal HashSet<ulong> SettledBeforeStart { get; set; } = [];

    internal SegmentUsage Usage { get; } = new();

    internal StorageOptions Options => _options;

    public DurableMark Durable => new(_log.DurablePosition.ToUInt64());

    public DurableMark AppendedEnd => new(_log.AppendedEnd.ToUInt64());

    public Exception? Failure => _log.Failure;

    public bool IsFull => _full;

    public TimeSpan CommitInProgressFor => _log.IsWriterRunning ? _log.CommitInProgressFor : TimeSpan.MaxValue;

    /// <summary>Opens (and recovers) the log; the caller then replays it with <see cref="Recover"/>.</summary>
    public static WalEnvelopeStore Open(StorageOptions options, ILogger logger, RelayMetrics? metrics = null)
    {
        WalOptions walOptions = options.ToWalOptions(metrics);
        if (!options.Sync)
        {
            StorageLog.SyncDisabled(logger, options.Directory);
        }

        var settlements = new SettlementsFound();
        return new WalEnvelopeStore(WriteAheadLog.Open(walOptions, logger, settlements), settlements, options, logger);
    }

    /// <summary>
    /// Appends an Envelope record (a copy from the sender's pipe into the log's write buffer) and counts it live in
    /// its segment. Busy when the log's buffer is full.
    /// </summary>
    public AppendResult TryAppend(in ReadOnlySequence<byte> frame, long acceptedAtMs, long expiresAtMs, out StoreRef reference, out DurableMark durableAt)
    {
        Span<byte> prefix = stackalloc byte[StoredRecords.EnvelopePrefixBytes];
        StoredRecords.WriteEnvelopePrefix(prefix, acceptedAtMs, expiresAtMs);
        reference = default;
        durableAt = default;
        WalPosition position;
        try
        {
            if (!_log.TryAppend(StoredRecords.Envelope, prefix, frame, out position))
            {
                return AppendResult.Busy;
            }
        }
        catch (WalDiskFullException)
        {
            SetFull(true, _log.AvailableBytes());
            return AppendResult.Full;
        }
        catch (WalFailedException)
        {
            return AppendResult.Failed;
        }

        Usage.Add(position.Segment);
        if (position.Segment != Volatile.Read(ref _appendSegment))
        {
            // The log took its next segment, and started pre-writing another: look at the disk now rather than at
            // the next periodic check, so the reserve is not eaten by a fast sender in between. Not here, though:
            // callers append under their locks, and statvfs is a syscall; they call CheckSpaceIfDue once out.
            Volatile.Write(ref _appendSegment, position.Segment);
            Volatile.Write(ref _spaceCheckDue, 1);
        }

        reference = new StoreRef(position.ToUInt64());
        durableAt = new DurableMark(WriteAheadLog.EndOf(position, StoredRecords.EnvelopePrefixBytes + (int)frame.Length).ToUInt64());
        return AppendResult.Appended;
    }

    public ValueTask WaitForSpaceAsync(CancellationToken cancellationToken) => _log.WaitForSpaceAsync(cancellationToken);

    public void NotifyWhenDurable(IDurabilityListener listener) => _durabilityListeners.Enqueue(listener);

    /// <summary>Appends a Settled record for the envelopes (several when they are many), not waited for.</summary>
    public void Settle(ReadOnlySpan<StoreRef> envelopes)
    {
        if (envelopes.IsEmpty)
        {
            return;
        }

        lock (_settledLock)
        {
            foreach (StoreRef envelope in envelopes)
            {
                if (!envelope.IsNone)
                {
                    _unwrittenSettled.Add(envelope.Value);
                }
            }

            WriteSettledLocked();
        }

        foreach (StoreRef envelope in envelopes)
        {
            if (!envelope.IsNone)
            {
                Usage.Remove(WalPosition.FromUInt64(envelope.Value).Segment);
            }
        }
    }

    /// <summary>Appends a HeldReceipts record; the segments keep their live count until <see cref="Settle"/> follows.</summary>
    public void SettleHeld(ReadOnlySpan<HeldReceiptEntry> held)
    {
        lock (_settledLock)
        {
            foreach (HeldReceiptEntry entry in held)
            {
                if (!entry.Envelope.IsNone)
                {
                    _unwrittenHeld.Add(entry);
                }
            }

            WriteSettledLocked();
        }
    }

    public void FlushSettled()
    {
        lock (_settledLock)
        {
            WriteSettledLocked();
        }
    }

    /// <summary>
    /// Runs the disk check an append asked for when it took a new segment (a flag read otherwise). Call with no lock
    /// held, right after appending.
    /// </summary>
    public void CheckSpaceIfDue()
    {
        if (Volatile.Read(ref _spaceCheckDue) != 0 && Interlocked.Exchange(ref _spaceCheckDue, 0) != 0)
        {
            CheckSpace();
        }
    }

    public bool CheckSpace()
    {
        long available = Math.Max(0, _log.AvailableBytesAfterPreparation());
        return SetFull(available < _options.ReserveBytes, available);
    }

    public void Recover(IRecoverySink sink, IDedupIndexes dedup, long nowMs) => WalStoreRecovery.Run(this, sink, dedup, nowMs, _logger);

    public void Dispose()
    {
        _log.Committed -= OnCommitted;
        _log.Dispose();
    }

    private bool SetFull(bool full, long available)
    {
        if (_full == full)
        {
            return false;
        }

        _full = full;
        if (full)
        {
            StorageLog.StorageFull(_logger, _options.Directory, available, _options.ReserveBytes);
        }
        else
        {
            StorageLog.StorageAvailable(_logger, _options.Directory, available);
        }

        return true;
    }

    private void WriteSettledLocked()
    {
        int held = 0;
        int settled = 0;
        try
        {
            // Held first: a Settled record for the same envelope may follow, and recovery applies both kinds anyway.
            while (held < _unwrittenHeld.Count)
            {
                int count = Math.Min(StoredRecords.MaxSettledPerRecord, _unwrittenHeld.Count - held);
                Span<byte> payload = SettledPayload(count * StoredRecords.HeldReceiptBytes);
                for (int i = 0; i < count; i++)
                {
                    StoredRecords.WriteHeldReceipt(payload[(i * StoredRecords.HeldReceiptBytes)..], _unwrittenHeld[held + i]);
                }

                if (!_log.TryAppend(StoredRecords.HeldReceipts, payload, out _))
                {
                    return; // the buffer is full; maintenance retries shortly
                }

                held += count;
            }

            while (settled < _unwrittenSettled.Count)
            {
                int count = Math.Min(StoredRecords.MaxSettledPerRecord, _unwrittenSettled.Count - settled);
                Span<byte> payload = SettledPayload(count * sizeof(ulong));
                for (int i = 0; i < count; i++)
                {
                    BinaryPrimitives.WriteUInt64LittleEndian(payload[(i * sizeof(ulong))..], _unwrittenSettled[settled + i]);
                }

                if (!_log.TryAppend(StoredRecords.Settled, payload, out _))
                {
                    return;
                }

                settled += count;
            }
        }
        catch (WalDiskFullException)
        {
            // Retried by maintenance once space returns; until then the envelopes may be delivered again after a crash.
            SetFull(true, _log.AvailableBytes());
        }
        catch (WalFailedException)
        {
            // The relay is stopping; recovery redelivers what was not marked.
            held = _unwrittenHeld.Count;
            settled = _unwrittenSettled.Count;
        }
        finally
        {
            _unwrittenHeld.RemoveRange(0, held);
            _unwrittenSettled.RemoveRange(0, settled);
        }
    }

    // One reusable payload buffer for Settled and HeldReceipts records (under _settledLock).
    private Span<byte> SettledPayload(int bytes)
    {
        if (_settledPayload.Length < bytes)
        {
            _settledPayload = new byte[StoredRecords.MaxSettledPerRecord * StoredRecords.HeldReceiptBytes];
        }

        return _settledPayload.AsSpan(0, bytes);
    }

    private void OnCommitted(WalPosition durable)
    {
        int count = _durabilityListeners.Count;
        while (count-- > 0 && _durabilityListeners.TryDequeue(out IDurabilityListener? listener))
        {
            listener.OnDurable();
        }
    }
}
