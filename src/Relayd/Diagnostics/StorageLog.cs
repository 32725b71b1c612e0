using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>Log lines of the relay's durable state (event ids 7xx). Never logs ciphertext or user ids.</summary>
internal static partial class StorageLog
{
    [LoggerMessage(EventIds.Recovered, LogLevel.Information, "Recovered {Live} undelivered envelopes from the write-ahead log in {Directory} ({Settled} settled, {Expired} expired, {Dedup} message ids for dedup) in {ElapsedMs:F0} ms")]
    public static partial void Recovered(ILogger logger, string directory, long live, long settled, long expired, long dedup, double elapsedMs);

    [LoggerMessage(EventIds.RecipientGone, LogLevel.Warning, "{Count} envelopes in the write-ahead log are for partner '{PartnerId}', which is no longer approved; they are dropped")]
    public static partial void RecipientGone(ILogger logger, long count, string partnerId);

    [LoggerMessage(EventIds.SyncDisabled, LogLevel.Warning, "Write-ahead log sync is OFF in {Directory} ([wal] sync = false): acks survive a relay crash but not a power loss")]
    public static partial void SyncDisabled(ILogger logger, string directory);

    [LoggerMessage(EventIds.StorageFull, LogLevel.Warning, "Storage full: {Available} bytes free on the filesystem of {Directory}, below the reserve of {Reserve} bytes; new envelopes are refused with STORAGE_FULL, delivery continues")]
    public static partial void StorageFull(ILogger logger, string directory, long available, long reserve);

    [LoggerMessage(EventIds.StorageAvailable, LogLevel.Information, "Storage available again: {Available} bytes free on the filesystem of {Directory}; accepting envelopes")]
    public static partial void StorageAvailable(ILogger logger, string directory, long available);

    [LoggerMessage(EventIds.LogFailed, LogLevel.Critical, "The write-ahead log failed; nothing after the last commit was acknowledged. relayd stops now and must be restarted (recovery keeps what reached the disk)")]
    public static partial void LogFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventIds.Expired, LogLevel.Information, "{Count} envelopes expired undelivered (retention); their senders get EXPIRED_UNDELIVERED receipts")]
    public static partial void Expired(ILogger logger, int count);

    [LoggerMessage(EventIds.MaintenanceFailed, LogLevel.Error, "Maintenance of the write-ahead log failed")]
    public static partial void MaintenanceFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventIds.Summary, LogLevel.Information, "Storage: {Metrics}")]
    public static partial void Summary(ILogger logger, string metrics);

    [LoggerMessage(EventIds.DedupSnapshotWritten, LogLevel.Debug, "Dedup snapshot written: {Count} message ids in {ElapsedMs:F0} ms")]
    public static partial void DedupSnapshotWritten(ILogger logger, int count, double elapsedMs);

    [LoggerMessage(EventIds.ReceiptsHeld, LogLevel.Information, "Holding {Held} receipts from before the restart for sender partners not connected ({Dropped} dropped beyond limits.held_receipts_per_partner)")]
    public static partial void ReceiptsHeld(ILogger logger, long held, int dropped);
}
