using Microsoft.Extensions.Logging;
using Relayd.Delivery;
using Relayd.Protocol.V1;
using Relayd.Diagnostics;
using Relayd.Routing;
using Relayd.Wal;

namespace Relayd.Storage;

/// <summary>
/// The background work of the durable store, on one task: loads spilled backlogs back into memory as it frees
/// (in log order), watches the disk reserve, settles envelopes that expired while their recipient was away, and
/// deletes segments whose envelopes are all settled (after saving the dedup index they still vouch for).
/// </summary>
internal sealed class StorageMaintenance
{
    // Fixed, not options: they pace internal work, and no admin choice of them would change what partners see.
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(25); // refills freed queues from the log well before a recipient drains them
    private static readonly TimeSpan SpaceCheckInterval = TimeSpan.FromMilliseconds(250); // statvfs + settled flush: cheap, and a burst cannot outrun the reserve in 250 ms
    private static readonly TimeSpan FullRetentionInterval = TimeSpan.FromSeconds(1); // while full, free delivered segments sooner than retention_interval_ms would
    private const int DeletionEvery = 6; // retention passes between segment deletions (30 s at the default interval)
    private const int DeleteAtOnceSegments = 16; // this many deletable segments (1 GiB at the default size) are not worth keeping until the next batch

    private readonly MessageStore _store;
    private readonly PartnerDirectory _partners;
    private readonly Action<List<SettledEnvelope>> _settle;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly List<SettledEnvelope> _settled = [];
    private readonly WalReadBuffer _readBuffer = new();
    private long _lastDeletion = Environment.TickCount64;

    public StorageMaintenance(MessageStore store, PartnerDirectory partners, Action<List<SettledEnvelope>> settle, TimeProvider clock, ILogger logger)
    {
        _store = store;
        _partners = partners;
        _settle = settle;
        _clock = clock;
        _logger = logger;
    }

    public async Task RunAsync(CancellationToken stopping)
    {
        await Task.Yield();
        using var timer = new PeriodicTimer(Tick);
        long lastSpaceCheck = 0;
        long lastRetention = Environment.TickCount64;
        try
        {
            while (await timer.WaitForNextTickAsync(stopping))
            {
                try
                {
                    LoadBacklogs();
                    long now = Environment.TickCount64;
                    if (now - lastSpaceCheck >= SpaceCheckInterval.TotalMilliseconds)
                    {
                        lastSpaceCheck = now;
                        _store.FlushSettled();
                        _store.CheckSpace();
                    }

                    TimeSpan retention = _store.IsFull ? FullRetentionInterval : _store.Options.RetentionInterval;
                    if (now - lastRetention >= retention.TotalMilliseconds)
                    {
                        lastRetention = now;
                        RunRetention();
                    }
                }
                catch (Exception ex) when (ex is IOException or InvalidDataException or UnauthorizedAccessException)
                {
                    StorageLog.MaintenanceFailed(_logger, ex);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>Settles expired envelopes and deletes the segments nothing unsettled is left in.</summary>
    public void RunRetention()
    {
        if (_store.Log.Failure is not null)
        {
            return;
        }

        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (PartnerInfo partner in _partners.Partners)
        {
            foreach (ShardQueue shard in partner.Mailbox.Shards)
            {
                shard.ExpireDue(nowMs, _settled);
            }
        }

        if (_settled.Count > 0)
        {
            StorageLog.Expired(_logger, _settled.Count);
            _settle(_settled);
            _settled.Clear();
        }

        IReadOnlyList<ulong> segments = _store.Log.Segments;
        ulong first = segments[0];
        ulong keepFrom = _store.Usage.LowestLive(first, _store.DurablePosition.Segment);

        // Deleting costs a dedup snapshot (all remembered ids), so under steady load it is batched; under disk
        // pressure it happens at once.
        long now = Environment.TickCount64;
        bool due = _store.IsFull || now - _lastDeletion >= DeletionEvery * _store.Options.RetentionInterval.TotalMilliseconds || keepFrom - first >= DeleteAtOnceSegments;
        if (keepFrom > first && due)
        {
            _lastDeletion = now;
            DedupSnapshot.Write(_store.Options.Directory, _partners, nowMs, _logger);
            _store.Log.DeleteSegmentsBefore(keepFrom);
            _store.CheckSpace();
        }
    }

    /// <summary>For every shard with envelopes only in the log, reads them back in order while memory allows.</summary>
    private void LoadBacklogs()
    {
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (PartnerInfo partner in _partners.Partners)
        {
            ShardQueue[] shards = partner.Mailbox.Shards;
            for (int i = 0; i < shards.Length; i++)
            {
                if (shards[i].IsSpilled && shards[i].HasRoom)
                {
                    LoadBacklog(partner, shards, i, nowMs);
                }
            }
        }

        if (_settled.Count > 0)
        {
            _settle(_settled);
            _settled.Clear();
        }
    }

    private void LoadBacklog(PartnerInfo partner, ShardQueue[] shards, int index, long nowMs)
    {
        ShardQueue shard = shards[index];
        if (!shard.TryGetSpillCursor(out WalPosition from))
        {
            return;
        }

        foreach (WalRecord record in _store.Log.ReadAll(from, _readBuffer))
        {
            if (record.Type != StoredRecords.Envelope
                || _store.SettledBeforeStart.Contains(record.Position.ToUInt64())
                || !StoredRecords.TryReadEnvelope(record.Payload, out StoredEnvelope envelope))
            {
                continue;
            }

            if (!ReferenceEquals(envelope.Recipient(_partners), partner) || envelope.Shard(shards.Length) != index)
            {
                continue;
            }

            int sender = envelope.Sender(_partners)?.Index ?? -1;
            bool expired = envelope.ExpiresAtMs <= nowMs;
            SpillLoad result = shard.TryLoadSpilled(envelope, sender, record.Position, record.End, skip: expired);
            if (result != SpillLoad.Loaded)
            {
                return;
            }

            if (expired)
            {
                _settled.Add(SettledEnvelope.Expired(sender, envelope.Header.MessageId, record.Position.ToUInt64()));
            }
        }
    }
}
