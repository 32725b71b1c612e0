using Relayd.Wal;

namespace Relayd.Storage.WalStore;

internal sealed partial class WalEnvelopeStore
{
    private const int DeletionEvery = 6; // retention passes between segment deletions (30 s at the default interval)
    private const int DeleteAtOnceSegments = 16; // this many deletable segments (1 GiB at the default size) are not worth keeping until the next batch

    private readonly WalReadBuffer _backlogBuffer = new();
    private long _lastDeletion = Environment.TickCount64;

    /// <summary>
    /// Reads the log from the shard's cursor: every Envelope record not settled before the start, in log order. With
    /// many partners offline at once each shard re-reads the others' records (read amplification, not memory).
    /// </summary>
    public void ReadBacklog(StoreRef from, IBacklogReader reader)
    {
        foreach (WalRecord record in _log.ReadAll(WalPosition.FromUInt64(from.Value), _backlogBuffer))
        {
            if (record.Type != StoredRecords.Envelope
                || SettledBeforeStart.Contains(record.Position.ToUInt64())
                || !StoredRecords.TryReadEnvelope(record, out StoredEnvelope envelope))
            {
                continue;
            }

            if (!reader.OnEnvelope(envelope))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Deletes every segment below the lowest one holding an unsettled envelope, after writing the dedup snapshot.
    /// That costs a snapshot of all remembered ids, so under steady load it is batched; under disk pressure it
    /// happens at once.
    /// </summary>
    public void RunRetention(IDedupIndexes dedup, long nowMs)
    {
        if (_log.Failure is not null)
        {
            return;
        }

        IReadOnlyList<ulong> segments = _log.Segments;
        ulong first = segments[0];
        ulong keepFrom = Usage.LowestLive(first, _log.DurablePosition.Segment);
        long now = Environment.TickCount64;
        bool due = IsFull || now - _lastDeletion >= DeletionEvery * _options.RetentionInterval.TotalMilliseconds || keepFrom - first >= DeleteAtOnceSegments;
        if (keepFrom > first && due)
        {
            _lastDeletion = now;
            DedupSnapshot.Write(_options.Directory, dedup, nowMs, _logger);
            _log.DeleteSegmentsBefore(keepFrom);
            CheckSpace();
        }
    }

    public StorageMetrics CaptureMetrics(IReadOnlyList<PartnerBacklog> backlog)
    {
        HdrHistogram.HistogramBase sync = _log.SyncLatency;
        bool any = sync.TotalCount > 0;
        return new StorageMetrics(
            _log.SizeBytes,
            _log.Segments.Count,
            _log.SyncCount,
            any ? sync.GetValueAtPercentile(50) : 0,
            any ? sync.GetValueAtPercentile(99) : 0,
            any ? HdrHistogram.HistogramExtensions.GetMaxValue(sync) : 0,
            backlog);
    }
}
