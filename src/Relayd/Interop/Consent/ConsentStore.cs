using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage.WalStore;
using Relayd.Wal;

namespace Relayd.Interop.Consent;

/// <summary>What became of a ConsentUpdate handed to <see cref="ConsentStore.Submit"/>.</summary>
internal readonly record struct ConsentSubmission(ErrorCode Refusal, string? Detail, ConsentLogMark End)
{
    public bool Accepted => Refusal == ErrorCode.Unspecified;
}

/// <summary>
/// Consent that survives restarts and kill -9: a write-ahead log of its own in <c>&lt;wal.dir&gt;/consent/</c> (group
/// commit, fdatasync, CRC, torn-tail recovery: <see cref="WriteAheadLog"/>) with one record per accepted ConsentUpdate,
/// plus <see cref="ConsentSnapshot"/> once the log spans <see cref="SnapshotAfterSegments"/> segments, after which
/// the older segments are deleted. Opening replays snapshot then log into the <see cref="ConsentTable"/>.
/// </summary>
/// <remarks>
/// An update is appended and applied under one lock, so the table changes in log order (what replay reproduces); it
/// is in force at once and acknowledged once the log has made it durable (<see cref="WhenDurableAsync"/>).
/// </remarks>
internal sealed class ConsentStore : IDisposable
{
    /// <summary>The consent log's directory inside the envelope log's; that log only reads its own <c>wal-*.log</c> files.</summary>
    public const string DirectoryName = "consent";

    /// <summary>Segments of 4 MiB (or the envelope log's segment size if smaller): about 15,000 changes of 256-byte users each.</summary>
    public const int SegmentBytes = 4 * 1024 * 1024;

    /// <summary>Write buffers of 1 MiB: a full update (1,000 changes of the longest users) is about 270 KiB.</summary>
    public const int WriteBufferBytes = 1024 * 1024;

    /// <summary>A snapshot is written when the log grew this many segments past the last one (8 MiB).</summary>
    public const int SnapshotAfterSegments = 2;

    private readonly WalConsentLog _log;
    private readonly PartnerDirectory _partners;
    private readonly int _maxChanges;
    private readonly ILogger _logger;
    private readonly Lock _snapshotLock = new();
    private ConsentLogMark _lastEnd;
    private ulong _snapshotSegment;
    private Task _snapshot = Task.CompletedTask;
    private int _failedLogged;

    private ConsentStore(WalConsentLog log, ConsentTable table, PartnerDirectory partners, int maxChanges, ILogger logger, ulong snapshotSegment)
    {
        _log = log;
        Table = table;
        _partners = partners;
        _maxChanges = maxChanges;
        _logger = logger;
        _lastEnd = log.Durable;
        _snapshotSegment = snapshotSegment;
        log.Failed += error =>
        {
            if (Interlocked.Exchange(ref _failedLogged, 1) == 0)
            {
                ConsentLog.ConsentLogFailed(logger, error.Message);
            }
        };
    }

    public ConsentTable Table { get; }

    public string Directory => _log.Directory;

    /// <summary>fdatasyncs the consent log has done (tests observe that an ack follows one).</summary>
    public long SyncCount => _log.SyncCount;

    /// <summary>
    /// Opens (creating it if needed) the consent store under <paramref name="envelopeLog"/>'s directory, with that
    /// log's sync policy: loads the snapshot, replays the log after it.
    /// </summary>
    /// <exception cref="InvalidDataException">The snapshot or a log record is damaged.</exception>
    /// <exception cref="WalCorruptionException">A durable record of the consent log is damaged.</exception>
    public static ConsentStore Open(WalOptions envelopeLog, InteropOptions options, PartnerDirectory partners, ILogger logger)
    {
        var stopwatch = Stopwatch.StartNew();
        string directory = Path.Combine(envelopeLog.Directory, DirectoryName);
        ConsentSnapshot.Content? snapshot = ConsentSnapshot.Load(directory);
        var table = new ConsentTable(options.RequireOptIn, snapshot?.Seed ?? BitConverter.ToInt64(RandomNumberGenerator.GetBytes(8)));
        long restored = 0;
        if (snapshot is not null)
        {
            foreach (string id in snapshot.Ordinals)
            {
                table.Ordinals.GetOrAdd(id);
            }

            foreach ((string owner, List<(ulong Key, ulong Scope)> users) in snapshot.Partners)
            {
                foreach ((ulong key, ulong scope) in users)
                {
                    table.Restore(owner, key, scope);
                }

                restored += users.Count;
            }
        }

        // Never larger than the envelope log's own segments: a small disk sized for those must hold this log too.
        int segmentBytes = Math.Min(SegmentBytes, envelopeLog.SegmentBytes);
        WalConsentLog log = WalConsentLog.Open(envelopeLog with { Directory = directory, SegmentBytes = segmentBytes, WriteBufferBytes = Math.Min(WriteBufferBytes, segmentBytes), Metrics = null }, logger);
        long records = 0;
        try
        {
            foreach ((byte type, ReadOnlyMemory<byte> payload) in log.ReadFrom(snapshot?.ReplayFrom ?? default))
            {
                if (type == ConsentRecord.Batch)
                {
                    (string owner, ConsentUpdate update) = ConsentRecord.Decode(payload.Span);
                    table.Apply(owner, update);
                    records++;
                }
            }
        }
        catch
        {
            log.Dispose();
            throw;
        }

        var store = new ConsentStore(log, table, partners, options.MaxConsentChanges, logger, snapshot?.ReplayFrom.Segment ?? 0);
        ConsentLog.ConsentOpened(logger, directory, table.Users, snapshot?.Partners.Count ?? 0, restored, records, stopwatch.Elapsed.TotalMilliseconds, options.RequireOptIn);
        return store;
    }

    /// <summary>
    /// Checks <paramref name="update"/> from <paramref name="owner"/>, appends it to the log and puts it in force; the
    /// answer says why not, or where its record ends (for <see cref="WhenDurableAsync"/>). Never waits for the disk.
    /// </summary>
    public ConsentSubmission Submit(PartnerInfo owner, ConsentUpdate update)
    {
        byte[] payload = ConsentRecord.Encode(owner.Id, update);
        if (payload.Length > _log.MaxPayloadBytes)
        {
            return new ConsentSubmission(ErrorCode.InvalidRequest, $"the ConsentUpdate takes {payload.Length} bytes, more than the {_log.MaxPayloadBytes} one update may; split it", default);
        }

        ConsentLogMark end;
        lock (Table.SyncRoot)
        {
            if (!ConsentUpdateCheck.TryAccept(update, _maxChanges, _partners, Table.Ordinals, out ErrorCode code, out string detail))
            {
                return new ConsentSubmission(code, detail, default);
            }

            try
            {
                if (!_log.TryAppend(ConsentRecord.Batch, payload, out end))
                {
                    return new ConsentSubmission(ErrorCode.RetryLater, "the consent log's write buffer is full; retry the ConsentUpdate shortly", default);
                }
            }
            catch (WalException ex)
            {
                return new ConsentSubmission(ErrorCode.RetryLater, $"the consent log cannot take updates now ({ex.Message}); retry later", default);
            }

            Table.Apply(owner.Id, update);
            _lastEnd = end;
        }

        SnapshotIfDue(end);
        return new ConsentSubmission(ErrorCode.Unspecified, null, end);
    }

    /// <summary>Completes with true once the record ending at <paramref name="end"/> is durable; false when the log failed first.</summary>
    public Task<bool> WhenDurableAsync(ConsentLogMark end) => _log.WhenDurableAsync(end);

    /// <summary>Writes a snapshot now and deletes the segments it covers (what <see cref="Submit"/> does when the log has grown).</summary>
    public void WriteSnapshot()
    {
        lock (_snapshotLock)
        {
            var stopwatch = Stopwatch.StartNew();
            ConsentSnapshot.Content content;
            lock (Table.SyncRoot)
            {
                content = new ConsentSnapshot.Content(Table.Seed, _lastEnd, [.. Table.Ordinals.Ids], Table.Copy());
            }

            ConsentSnapshot.Write(Directory, content);
            Volatile.Write(ref _snapshotSegment, content.ReplayFrom.Segment);
            _log.DeleteBefore(content.ReplayFrom);
            long users = 0;
            foreach ((_, List<(ulong, ulong)> list) in content.Partners)
            {
                users += list.Count;
            }

            ConsentLog.ConsentSnapshotWritten(_logger, users, content.ReplayFrom.ToString(), stopwatch.Elapsed.TotalMilliseconds);
        }
    }

    private void SnapshotIfDue(ConsentLogMark end)
    {
        if (end.Segment < Volatile.Read(ref _snapshotSegment) + SnapshotAfterSegments)
        {
            return;
        }

        lock (_snapshotLock)
        {
            if (!_snapshot.IsCompleted)
            {
                return;
            }

            _snapshot = Task.Run(() =>
            {
                try
                {
                    WriteSnapshot();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
                {
                    ConsentLog.ConsentSnapshotFailed(_logger, ex.Message);
                }
            });
        }
    }

    public void Dispose()
    {
        Task snapshot;
        lock (_snapshotLock)
        {
            snapshot = _snapshot;
        }

        snapshot.Wait();
        _log.Dispose();
    }
}
