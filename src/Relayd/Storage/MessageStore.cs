using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Relayd.Delivery;
using Relayd.Diagnostics;
using Relayd.Wal;

namespace Relayd.Storage;

/// <summary>Told when the log has made more records durable; see <see cref="MessageStore.NotifyOnCommit"/>.</summary>
internal interface ICommitListener
{
    void OnCommitted();
}

/// <summary>
/// The relay's durable state on top of the write-ahead log: accepted envelopes, which of them are settled, and
/// whether there is room for more. Shard queues append through it; the ack path waits on its commits.
/// </summary>
internal sealed class MessageStore : IDisposable
{
    private readonly WriteAheadLog _log;
    private readonly StorageOptions _options;
    private readonly ILogger _logger;
    private readonly ConcurrentQueue<ICommitListener> _commitListeners = new();
    private readonly Lock _settledLock = new();
    private readonly List<ulong> _unwrittenSettled = [];
    private readonly List<SettledEnvelope> _unwrittenHeld = [];
    private byte[] _settledPayload = [];
    private volatile bool _full;
    private int _spaceCheckDue;      // 1: an append took a new segment; the disk is probed once the caller is out of its locks
    private ulong _appendSegment;

    private MessageStore(WriteAheadLog log, StorageOptions options, ILogger logger)
    {
        _log = log;
        _options = options;
        _logger = logger;
        log.Committed += OnCommitted;
    }

    /// <summary>Envelope records settled before this start (read by recovery); they are never delivered again.</summary>
    public HashSet<ulong> SettledBeforeStart { get; internal set; } = [];

    public SegmentUsage Usage { get; } = new();

    public WriteAheadLog Log => _log;

    public StorageOptions Options => _options;

    public WalPosition DurablePosition => _log.DurablePosition;

    /// <summary>True while the disk is below its reserve: new envelopes are refused with STORAGE_FULL.</summary>
    public bool IsFull => _full;

    /// <summary>Opens (and recovers) the log; the caller then replays it with <see cref="StoreRecovery"/>.</summary>
    public static MessageStore Open(StorageOptions options, ILogger logger, RelayMetrics? metrics = null)
    {
        WalOptions walOptions = options.ToWalOptions(metrics);
        if (!options.Sync)
        {
            StorageLog.SyncDisabled(logger, options.Directory);
        }

        return new MessageStore(WriteAheadLog.Open(walOptions, logger), options, logger);
    }

    /// <summary>
    /// Appends an accepted envelope (its frame still sliced from the sender's pipe) and counts it live in its segment.
    /// False when the log's buffer is full: retry after <see cref="WaitForSpaceAsync"/>.
    /// </summary>
    /// <exception cref="WalDiskFullException">No room for a new segment; the store is marked full.</exception>
    public bool TryAppendEnvelope(in ReadOnlySequence<byte> frame, long acceptedAtMs, long expiresAtMs, out WalPosition position)
    {
        Span<byte> prefix = stackalloc byte[StoredRecords.EnvelopePrefixBytes];
        StoredRecords.WriteEnvelopePrefix(prefix, acceptedAtMs, expiresAtMs);
        try
        {
            if (!_log.TryAppend(StoredRecords.Envelope, prefix, frame, out position))
            {
                return false;
            }
        }
        catch (WalDiskFullException)
        {
            SetFull(true, _log.AvailableBytes());
            throw;
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

        return true;
    }

    /// <summary>The position after an envelope record: its Ack waits until the log is durable up to here.</summary>
    public static ulong DurableAt(WalPosition position, long frameLength) =>
        WriteAheadLog.EndOf(position, StoredRecords.EnvelopePrefixBytes + (int)frameLength).ToUInt64();

    public ValueTask WaitForSpaceAsync(CancellationToken cancellationToken) => _log.WaitForSpaceAsync(cancellationToken);

    /// <summary>Calls <paramref name="listener"/> once after the next commit (on the log writer thread: be quick).</summary>
    public void NotifyOnCommit(ICommitListener listener) => _commitListeners.Enqueue(listener);

    /// <summary>
    /// Marks envelopes settled: their segments may be deleted, and a Settled record keeps them from being delivered
    /// again after a restart. The record is not waited for (at-least-once: a crash first means one more delivery).
    /// </summary>
    public void Settle(ReadOnlySpan<SettledEnvelope> settled)
    {
        if (settled.IsEmpty)
        {
            return;
        }

        lock (_settledLock)
        {
            foreach (ref readonly SettledEnvelope envelope in settled)
            {
                if (envelope.WalPosition != 0)
                {
                    _unwrittenSettled.Add(envelope.WalPosition);
                }
            }

            WriteSettledLocked();
        }

        foreach (ref readonly SettledEnvelope envelope in settled)
        {
            if (envelope.WalPosition != 0)
            {
                Usage.Remove(WalPosition.FromUInt64(envelope.WalPosition).Segment);
            }
        }
    }

    /// <summary>
    /// Marks envelopes settled whose receipts are held for a sender partner that is not connected: not delivered
    /// again, and after a restart their receipts are held again. Their segments stay until <see cref="Settle"/>
    /// follows, once a session of the sender has taken the receipts.
    /// </summary>
    public void SettleHeld(ReadOnlySpan<SettledEnvelope> held)
    {
        lock (_settledLock)
        {
            foreach (ref readonly SettledEnvelope envelope in held)
            {
                if (envelope.WalPosition != 0)
                {
                    _unwrittenHeld.Add(envelope);
                }
            }

            WriteSettledLocked();
        }
    }

    /// <summary>Writes Settled records that did not fit in the log's buffer before; called from maintenance.</summary>
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

    /// <summary>Checks the disk against the reserve; returns true when the full state changed.</summary>
    public bool CheckSpace()
    {
        long available = Math.Max(0, _log.AvailableBytesAfterPreparation());
        return SetFull(available < _options.ReserveBytes, available);
    }

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
        int count = _commitListeners.Count;
        while (count-- > 0 && _commitListeners.TryDequeue(out ICommitListener? listener))
        {
            listener.OnCommitted();
        }
    }
}
