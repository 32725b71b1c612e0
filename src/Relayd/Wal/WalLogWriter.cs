using Relayd.Diagnostics;

namespace Relayd.Wal;

/// <summary>
/// The one log-writer thread. It takes everything appended while its previous write and fdatasync ran, writes it with
/// pwrite and syncs it, then publishes the new durable position. No timer: under load the batches grow by themselves
/// (PERFORMANCE.md lesson 1). A failed pwrite or fdatasync is fatal and is never retried (PostgreSQL's rule: after
/// a failed fsync the kernel may have dropped the dirty pages and a retry could falsely succeed).
/// </summary>
internal sealed partial class WalLogWriter
{
    private readonly WriteAheadLog _log;
    private readonly IWalFileSync _sync;
    private readonly bool _syncs;
    private readonly RelayMetrics? _metrics;
    private readonly Thread _thread;
    private readonly object _gate = new();
    private WalWriteBuffer _free;
    private volatile bool _stopping;
    private int _parking; // 1 while the writer found nothing to write and is about to wait or waiting
    private bool _woken; // guarded by _gate
    private long _syncCount;
    private long _commitStarted; // Stopwatch timestamp of the commit in progress; 0 while none is
    private readonly int _commitDelayMicroseconds;
    private const int TargetBatchBytes = 256 * 1024; // commit_delay_us waits only while a batch is below this: a larger one already spreads its fdatasync over many records

    public WalLogWriter(WriteAheadLog log, WalOptions options, WalWriteBuffer free)
    {
        _log = log;
        _sync = options.FileSync;
        _syncs = options.CommitPolicy.Syncs;
        _metrics = options.Metrics;
        _commitDelayMicroseconds = options.CommitPolicy.Syncs ? (int)options.CommitPolicy.CommitDelay.TotalMicroseconds : 0;
        _free = free;
        _thread = new Thread(Run) { IsBackground = true, Name = "wal-writer" };
    }

    /// <summary>Successful fdatasync calls made for commits.</summary>
    public long SyncCount => Interlocked.Read(ref _syncCount);

    private readonly HdrHistogram.LongHistogram _syncLatency = new(1, 60_000_000, 3);
    private readonly Lock _syncLatencyLock = new();

    /// <summary>A copy of the fdatasync durations so far, in microseconds (1 µs .. 60 s, 3 significant digits).</summary>
    public HdrHistogram.HistogramBase SyncLatencySnapshot()
    {
        lock (_syncLatencyLock)
        {
            return _syncLatency.Copy();
        }
    }

    public void Start() => _thread.Start();

    /// <summary>
    /// How long the commit in progress (pwrite and fdatasync of one batch) has been running; zero while the writer
    /// waits for appends. A hung disk shows here: the watchdog stops its pings once this passes its interval.
    /// </summary>
    public TimeSpan CommitInProgressFor
    {
        get
        {
            long started = Volatile.Read(ref _commitStarted);
            return started == 0 ? TimeSpan.Zero : System.Diagnostics.Stopwatch.GetElapsedTime(started);
        }
    }

    /// <summary>False once the writer thread ended without being stopped (it failed: the log is failed too).</summary>
    public bool IsRunning => _thread.IsAlive || _stopping;

    /// <summary>Called after every append; a single volatile read unless the writer is idle.</summary>
    public void Wake()
    {
        if (Volatile.Read(ref _parking) != 0)
        {
            Signal();
        }
    }

    /// <summary>Writes what is still buffered, then ends the thread.</summary>
    public void Stop()
    {
        _stopping = true;
        Signal();
        if (_thread.IsAlive)
        {
            _thread.Join();
        }
    }

    private void Run()
    {
        try
        {
            Loop();
        }
        catch (Exception ex)
        {
            _log.Fail("the log writer", ex);
        }
    }

    private void Loop()
    {
        while (true)
        {
            WalWriteBuffer next = _free; // filling once a batch is taken: it begins where the batch ends
            WalWriteBuffer? batch = _log.TakeBatch(next);
            if (batch is null)
            {
                // Announce the wait before looking again: an append that lands after this second look sees the flag
                // (both take the log's append lock) and wakes the writer.
                Interlocked.Exchange(ref _parking, 1);
                batch = _log.TakeBatch(next);
                if (batch is null)
                {
                    if (_stopping)
                    {
                        return;
                    }

                    lock (_gate)
                    {
                        while (!_woken && !_stopping)
                        {
                            Monitor.Wait(_gate);
                        }

                        _woken = false;
                    }
                }

                Volatile.Write(ref _parking, 0);
                if (batch is null)
                {
                    continue;
                }
            }

            batch.WaitForWriters();
            next.CopyPrefixFrom(batch);
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            Volatile.Write(ref _commitStarted, started);
            if (_log.Failure is not null || !WriteAndSync(batch))
            {
                return;
            }

            Volatile.Write(ref _commitStarted, 0);

            _metrics?.WalCommitDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            _metrics?.WalBytes.Add(batch.RecordBytes);
            _metrics?.WalCommitBatchSize.Record(batch.RecordBytes);

            _log.OnCommitted(batch.End);
            batch.Reset();
            _free = batch;
            if (_commitDelayMicroseconds > 0 && _log.PendingBytes is > 0 and < TargetBatchBytes)
            {
                // Under load, but the next batch is still small: let it grow a little. Each fdatasync costs ~40 µs
                // of CPU here whatever its size, so fewer, larger batches leave more CPU for TLS.
                _ = usleep((uint)_commitDelayMicroseconds);
            }
        }
    }

    private void Signal()
    {
        lock (_gate)
        {
            _woken = true;
            Monitor.Pulse(_gate);
        }
    }

    private bool WriteAndSync(WalWriteBuffer batch)
    {
        ReadOnlySpan<WalWriteBuffer.Run> runs = batch.Runs;
        for (int i = 0; i < runs.Length; i++)
        {
            WalWriteBuffer.Run run = runs[i];
            try
            {
                // Whole pages from page-aligned memory (a partial last page padded with the zeros the disk holds
                // there), so the segment's O_DIRECT handle can take them without the kernel copying every record
                // into the page cache; see WalWriteBuffer for how a batch that starts inside a page carries it.
                RandomAccess.Write(run.Segment.WriteHandle, batch.PadRun(run, run.Segment.Length), run.FileOffset);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                _log.Fail("pwrite", new IOException($"pwrite to {run.Segment.Path} at offset {run.FileOffset} failed: {ex.Message}", ex));
                return false;
            }

            // A segment is synced before anything is written to the next one, so after a crash only the last
            // segment holding data can end in a torn write; damage anywhere earlier is corruption.
            if (_syncs && (i == runs.Length - 1 || runs[i + 1].Segment != run.Segment))
            {
                long started = System.Diagnostics.Stopwatch.GetTimestamp();
                int errno = _sync.FDataSync(run.Segment.Handle);
                long microseconds = Math.Max(1, (long)System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMicroseconds);
                _metrics?.WalSyncDuration.Record(microseconds / 1000.0);
                lock (_syncLatencyLock)
                {
                    // Readers copy under the same lock: HdrHistogram's iteration refuses to run during a write.
                    _syncLatency.RecordValue(Math.Min(microseconds, 60_000_000));
                }
                if (errno != 0)
                {
                    _log.Fail("fdatasync", WalDirectorySync.Error("fdatasync", run.Segment.Path, errno));
                    return false;
                }

                Interlocked.Increment(ref _syncCount);
            }
        }

        return true;
    }

    [System.Runtime.InteropServices.LibraryImport("libc")]
    private static partial int usleep(uint microseconds);
}
