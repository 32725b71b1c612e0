using System.Buffers.Binary;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.V1;
using Relayd.Wal;

namespace Relayd.Storage.WalStore;

/// <summary>
/// Replays the log at start, before the relay listens: the dedup snapshot, then every Envelope record in log order
/// (so in conversation order) with what the Settled and HeldReceipts records say of it (<see cref="SettlementsFound"/>,
/// gathered by the log's open scan: the log is read twice in all, by that scan and this replay). What to do with each is the
/// sink's (Routing: dedup indexes, shard queues, held receipts); the store keeps the segment counts and the set of
/// envelopes settled before the start.
/// </summary>
internal static class WalStoreRecovery
{
    public static void Run(WalEnvelopeStore store, IRecoverySink sink, IDedupIndexes dedupIndexes, long nowMs, ILogger logger)
    {
        var stopwatch = Stopwatch.StartNew();
        int dedup = DedupSnapshot.Load(store.Options.Directory, dedupIndexes);

        // What was settled and which receipts were held: collected by the log's open scan, so this one read streams
        // the envelopes in order without holding them.
        SettlementsFound found = store.SettlementsFound ?? throw new InvalidOperationException("the store was recovered already");
        store.SettlementsFound = null;
        HashSet<ulong> settled = found.Settled;
        Dictionary<ulong, (ReceiptStatus Status, ErrorCode Code)> held = found.Held;
        var buffer = new WalReadBuffer();
        var progress = new ProgressMeter(store.Log.SegmentLengths, sink, stopwatch);
        long live = 0;
        long settledCount = 0;
        long expired = 0;
        long replayed = 0;
        foreach (WalRecord record in store.Log.ReadAll(default, buffer))
        {
            if (record.Type != StoredRecords.Envelope)
            {
                continue;
            }

            progress.OnRecord(record.Position, ++replayed);

            if (!StoredRecords.TryReadEnvelope(record, out StoredEnvelope envelope))
            {
                throw Unreadable(store, record);
            }

            ulong position = record.Position.ToUInt64();
            StoredFate fate = settled.Contains(position) ? new StoredFate(StoredFateKind.Settled)
                : held.TryGetValue(position, out (ReceiptStatus Status, ErrorCode Code) receipt) ? new StoredFate(StoredFateKind.Held, receipt.Status, receipt.Code)
                : new StoredFate(envelope.ExpiresAtMs <= nowMs ? StoredFateKind.Expired : StoredFateKind.Unsettled);
            RecoveredAs taken = sink.Recover(envelope, fate);
            if (taken == RecoveredAs.Unreadable)
            {
                throw Unreadable(store, record);
            }

            dedup++;
            switch (fate.Kind)
            {
                case StoredFateKind.Settled:
                    settledCount++;
                    break;
                case StoredFateKind.Held:
                    // Settled while its sender was away: its receipt is held again; the segment stays until a session takes it.
                    settled.Add(position);
                    settledCount++;
                    if (taken == RecoveredAs.Kept)
                    {
                        store.Usage.Add(record.Position.Segment);
                    }

                    break;
                case StoredFateKind.Expired when taken == RecoveredAs.Kept:
                    store.Usage.Add(record.Position.Segment);
                    settled.Add(position); // not part of any shard's backlog
                    expired++;
                    break;
                case StoredFateKind.Unsettled when taken == RecoveredAs.Kept:
                    store.Usage.Add(record.Position.Segment);
                    live++;
                    break;
            }
        }

        sink.OnRecovered();
        store.SettledBeforeStart = settled;
        StorageLog.Recovered(logger, store.Options.Directory, live, settledCount, expired, dedup, stopwatch.Elapsed.TotalMilliseconds);
    }

    /// <summary>Tells the sink how far the replay has come, at most about once a second.</summary>
    private sealed class ProgressMeter(IReadOnlyList<(ulong Number, long Length)> segments, IRecoverySink sink, Stopwatch clock)
    {
        private readonly long _total = Math.Max(1, segments.Sum(s => s.Length));
        private TimeSpan _nextReport = TimeSpan.FromSeconds(1);
        private int _records;

        public void OnRecord(WalPosition position, long envelopes)
        {
            // A clock read per 4096 records: nothing a replay notices.
            if ((++_records & 4095) != 0 || clock.Elapsed < _nextReport)
            {
                return;
            }

            _nextReport = clock.Elapsed + TimeSpan.FromSeconds(1);
            long before = 0;
            foreach ((ulong number, long length) in segments)
            {
                if (number >= position.Segment)
                {
                    break;
                }

                before += length;
            }

            double fraction = Math.Clamp((before + position.Offset) / (double)_total, 0, 1);
            sink.OnProgress(new RecoveryProgress(envelopes, fraction, clock.Elapsed));
        }
    }

    private static InvalidDataException Unreadable(WalEnvelopeStore store, in WalRecord record) =>
        new($"the envelope record at {record.Position} of the write-ahead log in {store.Options.Directory} has a valid checksum but cannot be read (written by an incompatible version?)");
}
