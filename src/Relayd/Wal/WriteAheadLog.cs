using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace Relayd.Wal;

/// <summary>
/// A write-ahead log of typed records in fixed-size, pre-zeroed segment files. Appending copies into an in-memory
/// buffer and never syncs (<see cref="TryAppend(byte, ReadOnlySpan{byte}, in System.Buffers.ReadOnlySequence{byte}, out WalPosition)"/>);
/// one log-writer thread writes and fdatasyncs everything appended meanwhile as one group commit and then advances
/// <see cref="DurablePosition"/>. A failed write or fdatasync is fatal (<see cref="Failed"/>). Thread-safe.
/// The on-disk format and the recovery rules are described in docs/wal.md.
/// </summary>
public sealed partial class WriteAheadLog : IDisposable
{
    private const string LockFileName = "wal.lock";

    private readonly WalOptions _options;
    private readonly ILogger _logger;
    private readonly SafeFileHandle _lockFile;
    private readonly WalSegmentPreparer _preparer;
    private readonly WalLogWriter _writer;

    private WriteAheadLog(WalOptions options, ILogger logger, SafeFileHandle lockFile, WalRecovery.Result recovered)
    {
        _options = options;
        _logger = logger;
        _lockFile = lockFile;
        Recovery = recovered.Report;
        _segments = [.. recovered.Segments];
        _tail = recovered.Segments[^1];
        _tailOffset = recovered.Report.End.Offset;
        _durable = recovered.Report.End.ToUInt64();
        _lastEnd = _durable;
        _filling = new WalWriteBuffer(options.WriteBufferBytes);
        _filling.Begin(_tail, _tailOffset);
        ReadPrefix(_filling, _tail, _tailOffset);
        _preparer = new WalSegmentPreparer(options, logger, OnSegmentPrepared);
        _writer = new WalLogWriter(this, options, new WalWriteBuffer(options.WriteBufferBytes));
    }

    /// <summary>
    /// Fills the first buffer's prefix with what the tail page holds before the log's end: the first batch rewrites
    /// that page whole (see <see cref="WalWriteBuffer"/>).
    /// </summary>
    private static void ReadPrefix(WalWriteBuffer buffer, WalSegment tail, long end)
    {
        Span<byte> prefix = buffer.Span(0, buffer.PrefixBytes);
        long from = end - prefix.Length;
        for (int done = 0; done < prefix.Length;)
        {
            int read = RandomAccess.Read(tail.Handle, prefix[done..], from + done);
            if (read == 0)
            {
                throw new IOException($"{tail.Path} ended at {from + done} while reading the {prefix.Length} bytes before the log's end at {end}");
            }

            done += read;
        }
    }

    /// <summary>What recovery found when the log was opened.</summary>
    public WalRecoveryReport Recovery { get; }

    /// <summary>The directory holding the segments.</summary>
    public string Directory => _options.Directory;

    /// <summary>The largest payload a record may carry (see <see cref="WalOptions.MaxPayloadBytes"/>).</summary>
    public int MaxPayloadBytes => _options.MaxPayloadBytes;

    /// <summary>
    /// Opens the log in <see cref="WalOptions.Directory"/> (creating it if needed), recovering what is on disk: every
    /// record of every segment is checked; a torn write at the very end is zeroed (and reported in
    /// <see cref="Recovery"/>); any other damage throws <see cref="WalCorruptionException"/> naming the file and
    /// offset. Only one process may have a directory open (an exclusive lock on <c>wal.lock</c>).
    /// </summary>
    /// <exception cref="WalCorruptionException">A durable record is damaged or a segment is missing.</exception>
    /// <exception cref="WalDiskFullException">The first segment could not be created for lack of space.</exception>
    /// <exception cref="IOException">The directory is in use by another process, or an I/O error.</exception>
    public static WriteAheadLog Open(WalOptions options, ILogger logger) => Open(options, logger, observer: null);

    /// <summary>
    /// As <see cref="Open(WalOptions, ILogger)"/>, telling <paramref name="observer"/> of every valid record as the
    /// recovery scan checks it, in log order: a caller that needs a summary of the log before it replays it (the
    /// envelope store: what was settled) gets it from the read that opening makes anyway. A record the observer saw
    /// is in the opened log (a torn tail comes after every valid record), unless the open throws.
    /// </summary>
    /// <exception cref="WalCorruptionException">A durable record is damaged or a segment is missing.</exception>
    /// <exception cref="WalDiskFullException">The first segment could not be created for lack of space.</exception>
    /// <exception cref="IOException">The directory is in use by another process, or an I/O error.</exception>
    public static WriteAheadLog Open(WalOptions options, ILogger logger, IWalRecordObserver? observer)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        if (!System.IO.Directory.Exists(options.Directory))
        {
            System.IO.Directory.CreateDirectory(options.Directory);
            if (Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.Directory))) is { } parent)
            {
                WalDirectorySync.Sync(parent); // so the new directory's own entry survives a crash
            }
        }

        SafeFileHandle lockFile = LockDirectory(options.Directory);
        WalRecovery.Result recovered;
        try
        {
            recovered = WalRecovery.Run(options, logger, observer);
        }
        catch
        {
            lockFile.Dispose();
            throw;
        }

        WriteAheadLog log;
        try
        {
            log = new WriteAheadLog(options, logger, lockFile, recovered);
        }
        catch
        {
            foreach (WalSegment segment in recovered.Segments)
            {
                segment.Dispose();
            }

            recovered.Spare?.Dispose();
            lockFile.Dispose();
            throw;
        }

        lock (log._appendLock)
        {
            if (recovered.Spare is not null)
            {
                log._preparer.Adopt(recovered.Spare);
            }
            else
            {
                log._preparer.Start(log._tail.Number + 1);
            }
        }

        log._writer.Start();
        WalLog.Opened(logger, options.Directory, recovered.Segments.Count, recovered.Report.Records, recovered.Report.End.ToString());
        return log;
    }

    /// <summary>The end position of a record that starts at <paramref name="position"/> and carries <paramref name="payloadLength"/> bytes.</summary>
    public static WalPosition EndOf(WalPosition position, int payloadLength) =>
        new(position.Segment, position.Offset + (uint)WalRecordHeader.RecordSize(payloadLength));

    /// <summary>
    /// Checks every segment in <paramref name="directory"/> without changing anything (for <c>relayd wal verify</c>):
    /// counts records and lists every problem with its segment file and byte offset. Safe while the log is open, but
    /// then the record being written may show as a torn tail.
    /// </summary>
    public static WalVerifyReport Verify(string directory) => WalRepair.Verify(directory);

    /// <summary>
    /// Truncates the log at its first corrupt record so that it opens again, losing nothing silently: the rest of that
    /// segment and every later segment are moved to <c>quarantine/&lt;UTC time&gt;/</c> in the directory, never deleted,
    /// and every move is logged. A torn tail alone is left for <see cref="Open"/>. The log must not be open.
    /// </summary>
    public static WalRepairResult Repair(string directory, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        using SafeFileHandle lockFile = LockDirectory(directory);
        return WalRepair.Repair(directory, logger);
    }

    /// <summary>
    /// Writes and syncs everything appended so far, stops the log writer and closes the files. Commit waiters still
    /// pending afterwards (the log had failed) see <see cref="ObjectDisposedException"/>.
    /// </summary>
    public void Dispose()
    {
        lock (_appendLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            SignalSpace(always: true);
        }

        _writer.Stop();
        _preparer.Dispose();
        FailWaiters(new ObjectDisposedException(nameof(WriteAheadLog)));
        foreach (WalSegment segment in _segments)
        {
            segment.Dispose();
        }

        _lockFile.Dispose();
    }

    private static SafeFileHandle LockDirectory(string directory)
    {
        string path = Path.Combine(directory, LockFileName);
        // Retried briefly: a process that forked while holding the lock (a child between fork and exec, or a
        // relayd still exiting) keeps the flock for a moment after the log was closed.
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                // FileShare.None takes flock(LOCK_EX) on Linux: a second relayd (or a repair) on the same log fails here.
                return File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException)
            {
                if (attempt >= LockAttempts)
                {
                    throw new IOException($"the WAL in {directory} is in use by another process ({path} is locked)", ex);
                }

                Thread.Sleep(LockRetryDelay);
            }
        }
    }

    // 2 s for a previous owner of wal.lock (a relay restarted in place, a repair) to let go before giving up.
    private const int LockAttempts = 100;
    private static readonly TimeSpan LockRetryDelay = TimeSpan.FromMilliseconds(20);
}
