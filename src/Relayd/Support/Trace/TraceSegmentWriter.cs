using System.Buffers.Binary;
using System.IO.Hashing;
using Microsoft.Extensions.Logging;
using Relayd.Routing;
using Relayd.Wal;

namespace Relayd.Support.Trace;

/// <summary>
/// The trace's one writer thread: takes the ring's entries, encodes them in batches and appends each batch to the open
/// segment with one plain write(); fdatasync when a segment closes and at most once a second otherwise (diagnostics:
/// a power loss may lose the last second, a process crash only what was still in the ring). Closes a segment at
/// <see cref="TraceOptions.SegmentBytes"/> and deletes the oldest closed ones beyond the retention and the size cap.
/// </summary>
internal sealed class TraceSegmentWriter : IDisposable
{
    public const int MaxBatchBytes = 1 << 20;

    private static readonly TimeSpan SyncInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan IdleWait = TimeSpan.FromMilliseconds(20);

    private readonly string _directory;
    private readonly TraceOptions _options;
    private readonly TraceRing _ring;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly TraceCounters _counters;
    private readonly byte[] _batch = new byte[MaxBatchBytes];
    private readonly Dictionary<string, int> _partnerIndexes = new(StringComparer.Ordinal);
    private readonly AutoResetEvent _wake = new(false);
    private readonly Lock _flushLock = new();
    private readonly List<TaskCompletionSource> _flushWaiters = [];
    private readonly List<TraceSegment> _closed;
    private readonly Thread _thread;
    private readonly long _startedAtMs;
    private bool _startWritten;
    private FileStream? _file;
    private long _sequence;
    private long _fileBytes;
    private long _firstMs = long.MaxValue;
    private long _lastMs = long.MinValue;
    private long _events;
    private bool _unsynced;
    private long _lastSyncTicks;
    private long _lastRetentionTicks;
    private volatile bool _stopping;
    private bool _failing;

    /// <param name="startedAtMs">When this process began recording: written before its first record (<see cref="TraceRecordCodec.WriteStarted"/>).</param>
    public TraceSegmentWriter(string directory, TraceOptions options, TraceRing ring, TimeProvider clock, ILogger logger, TraceCounters counters, List<TraceSegment> closed, long startedAtMs)
    {
        _startedAtMs = startedAtMs;
        _directory = directory;
        _options = options;
        _ring = ring;
        _clock = clock;
        _logger = logger;
        _counters = counters;
        _closed = closed;
        _sequence = closed.Count == 0 ? 0 : closed[^1].Sequence;
        _thread = new Thread(Run) { IsBackground = true, Name = "relayd trace writer" };
    }

    /// <summary>Bytes of the segment files now (closed ones and the open one).</summary>
    public long Bytes
    {
        get
        {
            lock (_closed)
            {
                return _closed.Sum(s => s.Bytes) + Interlocked.Read(ref _fileBytes);
            }
        }
    }

    public void Start() => _thread.Start();

    /// <summary>Benchmarks, with <see cref="Start"/> not called: writes what the ring holds on the caller's thread.</summary>
    internal int DrainNow() => Drain();

    /// <summary>Completes once everything added to the ring before the call is written to the segment (not synced).</summary>
    public Task FlushAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_flushLock)
        {
            _flushWaiters.Add(done);
        }

        _wake.Set();
        return done.Task;
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        if (_thread.IsAlive)
        {
            _thread.Join();
        }

        _wake.Dispose();
    }

    private void Run()
    {
        while (true)
        {
            bool stopping = _stopping;
            TaskCompletionSource[] waiters;
            lock (_flushLock)
            {
                waiters = _flushWaiters.Count == 0 ? [] : [.. _flushWaiters];
                _flushWaiters.Clear();
            }

            int written = Drain();
            long now = _clock.GetTimestamp();
            if (_unsynced && _clock.GetElapsedTime(_lastSyncTicks, now) >= SyncInterval)
            {
                Sync();
            }

            if (_clock.GetElapsedTime(_lastRetentionTicks, now) >= TimeSpan.FromSeconds(10))
            {
                _lastRetentionTicks = now;
                CloseIfOld();
                EnforceLimits();
            }

            foreach (TaskCompletionSource waiter in waiters)
            {
                waiter.TrySetResult();
            }

            if (stopping)
            {
                Close();
                return;
            }

            if (written == 0)
            {
                _wake.WaitOne(IdleWait);
            }
        }
    }

    /// <summary>Writes what the ring holds now, a batch at a time; returns how many entries.</summary>
    private int Drain()
    {
        int total = 0;
        while (true)
        {
            int length = TraceRecordCodec.BatchHeaderBytes;
            int entries = 0;
            long baseMs = 0;
            bool withStart = false;
            while (length + (3 * TraceRecordCodec.MaxRecordBytes) < _batch.Length && _ring.TryTake(out TraceEntry entry))
            {
                if (entries == 0)
                {
                    EnsureOpen();
                    baseMs = entry.AtMs;
                    if (!_startWritten)
                    {
                        length += TraceRecordCodec.WriteStarted(_batch.AsSpan(length), _startedAtMs);
                        withStart = true;
                    }
                }

                int sender = IndexOf(entry.Sender, ref length);
                int recipient = IndexOf(entry.Recipient, ref length);
                length += TraceRecordCodec.Write(_batch.AsSpan(length), entry, baseMs, sender, recipient);
                _firstMs = Math.Min(_firstMs, entry.AtMs);
                _lastMs = Math.Max(_lastMs, entry.AtMs);
                entries++;
            }

            if (entries == 0)
            {
                return total;
            }

            total += entries;
            Span<byte> header = _batch.AsSpan(0, TraceRecordCodec.BatchHeaderBytes);
            ReadOnlySpan<byte> body = _batch.AsSpan(TraceRecordCodec.BatchHeaderBytes, length - TraceRecordCodec.BatchHeaderBytes);
            BinaryPrimitives.WriteInt32LittleEndian(header, body.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(header[4..], Crc32.HashToUInt32(body));
            BinaryPrimitives.WriteInt64LittleEndian(header[8..], baseMs);
            _startWritten |= Append(_batch.AsSpan(0, length), entries) && withStart;
            if (_fileBytes >= _options.SegmentBytes)
            {
                Close();
                EnforceLimits();
            }
        }
    }

    // The partner's index in this segment; the first use writes the record that names it.
    private int IndexOf(PartnerInfo? partner, ref int length)
    {
        if (partner is null)
        {
            return -1;
        }

        if (!_partnerIndexes.TryGetValue(partner.Id, out int index))
        {
            index = _partnerIndexes.Count;
            _partnerIndexes.Add(partner.Id, index);
            length += TraceRecordCodec.WritePartner(_batch.AsSpan(length), index, partner.Id);
        }

        return index;
    }

    private void EnsureOpen()
    {
        if (_file is not null)
        {
            return;
        }

        _sequence++;
        _partnerIndexes.Clear();
        _firstMs = long.MaxValue;
        _lastMs = long.MinValue;
        _events = 0;
        try
        {
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                Share = FileShare.Read | FileShare.Delete,
                BufferSize = 0, // each batch is one write(): no second copy, no hidden flush
            };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
            }

            _file = new FileStream(Path.Combine(_directory, TraceSegment.OpenName(_sequence)), options);
            _file.Write(TraceRecordCodec.Magic);
            Interlocked.Exchange(ref _fileBytes, TraceRecordCodec.Magic.Length);
            _failing = false;
        }
        catch (IOException ex)
        {
            Failed(ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            Failed(ex);
        }
    }

    /// <summary>Appends one batch; false when it was lost (counted as dropped).</summary>
    private bool Append(ReadOnlySpan<byte> batch, int entries)
    {
        if (_file is null)
        {
            _counters.Dropped(entries);
            return false;
        }

        try
        {
            _file.Write(batch);
            Interlocked.Add(ref _fileBytes, batch.Length);
            _events += entries;
            _counters.Written(entries);
            _unsynced = true;
            return true;
        }
        catch (IOException ex)
        {
            // Disk full or failing: these events are lost (counted); the next batch tries a new segment.
            _counters.Dropped(entries);
            Failed(ex);
            Close();
            return false;
        }
    }

    private void Failed(Exception ex)
    {
        if (!_failing)
        {
            _failing = true;
            TraceLog.TraceWriteFailed(_logger, _directory, ex.Message);
        }

        _file?.Dispose();
        _file = null;
    }

    private void Sync()
    {
        if (_file is not null)
        {
            int errno = LibcFileSync.Instance.FDataSync(_file.SafeFileHandle);
            if (errno != 0 && !_failing)
            {
                _failing = true;
                TraceLog.TraceWriteFailed(_logger, _directory, $"fdatasync failed (errno {errno})");
            }
        }

        _unsynced = false;
        _lastSyncTicks = _clock.GetTimestamp();
    }

    /// <summary>Syncs and closes the open segment and renames it with its times and event count.</summary>
    private void Close()
    {
        if (_file is not { } file)
        {
            return;
        }

        Sync();
        string openPath = file.Name;
        file.Dispose();
        _file = null;
        long bytes = Interlocked.Exchange(ref _fileBytes, 0);
        if (_events == 0)
        {
            File.Delete(openPath);
            return;
        }

        string closedPath = Path.Combine(_directory, TraceSegment.ClosedName(_sequence, _firstMs, _lastMs, _events));
        try
        {
            File.Move(openPath, closedPath);
        }
        catch (IOException ex)
        {
            TraceLog.TraceWriteFailed(_logger, _directory, ex.Message);
            closedPath = openPath;
        }

        lock (_closed)
        {
            _closed.Add(new TraceSegment(closedPath, _sequence, _firstMs, _lastMs, _events, bytes, IsOpen: false));
        }
    }

    // A quiet relay may take longer than the retention to fill a segment: one whose first event is older than a
    // quarter of the retention (at most an hour) is closed, so that retention, which deletes closed segments only,
    // reaches its events in time.
    private void CloseIfOld()
    {
        long maxAgeMs = (long)Math.Min(TimeSpan.FromHours(1).TotalMilliseconds, _options.Retention.TotalMilliseconds / 4);
        if (_file is not null && _events > 0 && _clock.GetUtcNow().ToUnixTimeMilliseconds() - _firstMs >= maxAgeMs)
        {
            Close();
        }
    }

    /// <summary>Deletes closed segments, oldest first, whose newest event is past the retention or that exceed the size cap.</summary>
    private void EnforceLimits()
    {
        long cutoffMs = _clock.GetUtcNow().ToUnixTimeMilliseconds() - (long)_options.Retention.TotalMilliseconds;
        while (true)
        {
            TraceSegment oldest;
            string reason;
            lock (_closed)
            {
                if (_closed.Count == 0)
                {
                    return;
                }

                oldest = _closed[0];
                long bytes = _closed.Sum(s => s.Bytes) + Interlocked.Read(ref _fileBytes);
                reason = oldest.LastMs < cutoffMs ? "retention" : bytes > _options.MaxBytes ? "size" : "";
                if (reason.Length == 0)
                {
                    return;
                }

                _closed.RemoveAt(0);
            }

            try
            {
                File.Delete(oldest.Path);
            }
            catch (IOException ex)
            {
                TraceLog.TraceWriteFailed(_logger, _directory, ex.Message);
            }

            _counters.Expired(oldest.Events, reason);
        }
    }
}
