using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.Internal;
using Relayd.Storage;

namespace Relayd.Routing;

/// <summary>
/// The background work around the store, on one task: loads spilled backlogs back into memory as it frees (in
/// store order), watches the disk reserve, settles envelopes that expired while their recipient was away, and lets
/// the store reclaim what is settled (after saving the dedup indexes it still vouches for).
/// </summary>
internal sealed class QueueMaintenance : IBacklogReader
{
    // Fixed, not options: they pace internal work, and no admin choice of them would change what partners see.
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(25); // refills freed queues from the log well before a recipient drains them
    private static readonly TimeSpan SpaceCheckInterval = TimeSpan.FromMilliseconds(250); // statvfs + settled flush: cheap, and a burst cannot outrun the reserve in 250 ms
    private static readonly TimeSpan FullRetentionInterval = TimeSpan.FromSeconds(1); // while full, free delivered segments sooner than retention_interval_ms would

    private readonly IEnvelopeStore _store;
    private readonly PartnerDirectory _partners;
    private readonly PartnerDedupIndexes _dedup;
    private readonly ISettlementSink _settle;
    private readonly TimeSpan _retentionInterval;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly List<SettledEnvelope> _settled = [];
    private readonly Admission.IConsentPolicy _consent;
    private readonly Routing.SupportEvents _support;
    private int _sweptEpoch;

    // The shard whose backlog is being read (IBacklogReader).
    private PartnerInfo? _loading;
    private ShardQueue? _loadingShard;
    private int _loadingIndex;
    private int _loadingShardCount;
    private long _loadingNowMs;

    /// <param name="consent">Who opted in: after a revoke, queued envelopes of users without consent are settled REFUSED. Null: opt-in is not checked here.</param>
    public QueueMaintenance(IEnvelopeStore store, PartnerDirectory partners, ISettlementSink settle, TimeSpan retentionInterval, TimeProvider clock, ILogger logger, Admission.IConsentPolicy? consent = null, Routing.SupportEvents? support = null)
    {
        _support = support ?? Routing.SupportEvents.None;
        _consent = consent ?? Admission.NoConsentRequired.Instance;
        _sweptEpoch = _consent.RevokeEpoch;
        _store = store;
        _partners = partners;
        _dedup = new PartnerDedupIndexes(partners);
        _settle = settle;
        _retentionInterval = retentionInterval;
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
                    RefuseRevoked();
                    long now = Environment.TickCount64;
                    if (now - lastSpaceCheck >= SpaceCheckInterval.TotalMilliseconds)
                    {
                        lastSpaceCheck = now;
                        _store.FlushSettled();
                        _store.CheckSpace();
                    }

                    TimeSpan retention = _store.IsFull ? FullRetentionInterval : _retentionInterval;
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

    /// <summary>After a revoke (the consent epoch moved): settles what is queued in memory for or from users without consent.</summary>
    public void RefuseRevoked()
    {
        int epoch = _consent.RevokeEpoch;
        if (!_consent.Required || epoch == _sweptEpoch || _store.Failure is not null)
        {
            return;
        }

        foreach (PartnerInfo partner in _partners.Partners)
        {
            foreach (ShardQueue shard in partner.Mailbox.Shards)
            {
                shard.RefuseRevoked(_consent, partner, epoch, _settled);
            }

            if (_settled.Count > 0)
            {
                ConsentLog.ConsentQueuedRefused(_logger, _settled.Count, partner.Id);
                _support.ReportUndelivered(_settled, partner, _clock.GetUtcNow().ToUnixTimeMilliseconds());
                _settle.Settle(_settled);
                _settled.Clear();
            }
        }

        _sweptEpoch = epoch;
    }

    /// <summary>Settles expired envelopes held in memory and lets the store reclaim what nothing unsettled is left in.</summary>
    public void RunRetention()
    {
        if (_store.Failure is not null)
        {
            return;
        }

        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        int expired = 0;
        foreach (PartnerInfo partner in _partners.Partners)
        {
            int before = _settled.Count;
            foreach (ShardQueue shard in partner.Mailbox.Shards)
            {
                shard.ExpireDue(nowMs, _settled);
            }

            if (_settled.Count > before)
            {
                // Per recipient partner: the event names it. Settled together below, as before.
                ReportExpired(before, partner, nowMs);
            }
        }

        expired = _settled.Count;
        if (expired > 0)
        {
            StorageLog.Expired(_logger, expired);
            _settle.Settle(_settled);
            _settled.Clear();
        }

        _store.RunRetention(_dedup, nowMs);
    }

    private void ReportExpired(int from, PartnerInfo recipient, long nowMs)
    {
        if (_support.IsEmpty)
        {
            return;
        }

        for (int i = from; i < _settled.Count; i++)
        {
            _support.EnvelopeExpired(_settled[i].Sender, _settled[i].Receipt.MessageId, recipient, nowMs);
        }
    }

    /// <summary>For every shard with envelopes only in the store, reads them back in order while memory allows.</summary>
    private void LoadBacklogs()
    {
        long nowMs = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (PartnerInfo partner in _partners.Partners)
        {
            ShardQueue[] shards = partner.Mailbox.Shards;
            for (int i = 0; i < shards.Length; i++)
            {
                if (shards[i].IsSpilled && shards[i].HasRoom && shards[i].TryGetSpillCursor(out StoreRef from))
                {
                    (_loading, _loadingShard, _loadingIndex, _loadingShardCount, _loadingNowMs) = (partner, shards[i], i, shards.Length, nowMs);
                    _store.ReadBacklog(from, this);
                }
            }
        }

        _loading = null;
        _loadingShard = null;
        if (_settled.Count > 0)
        {
            _settle.Settle(_settled);
            _settled.Clear();
        }
    }

    /// <summary>One envelope after the loading shard's cursor: loaded if it is that shard's, passed over otherwise.</summary>
    bool IBacklogReader.OnEnvelope(in StoredEnvelope envelope)
    {
        if (!StoredEnvelopes.TryReadHeader(envelope, out EnvelopeHeader header)
            || !ReferenceEquals(StoredEnvelopes.Recipient(_partners, envelope.Frame, header), _loading)
            || StoredEnvelopes.Shard(envelope.Frame, header, _loadingShardCount) != _loadingIndex)
        {
            return true;
        }

        PartnerInfo? sender = StoredEnvelopes.Sender(_partners, envelope.Frame, header);
        bool expired = envelope.ExpiresAtMs <= _loadingNowMs;
        if (_loadingShard!.TryLoadSpilled(envelope, header, sender, skip: expired) != SpillLoad.Loaded)
        {
            return false;
        }

        if (expired)
        {
            _settled.Add(SettledEnvelope.Expired(sender, header.MessageId, envelope.Ref));
            if (!_support.IsEmpty)
            {
                _support.EnvelopeExpired(sender, header.MessageId, _loading!, _loadingNowMs);
            }
        }

        return true;
    }
}
