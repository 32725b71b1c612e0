using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>Log lines of signed delivery evidence (event ids 970-979). Never a user id or a statement: counts, trees, paths.</summary>
internal static partial class EvidenceLog
{
    [LoggerMessage(EventIds.EvidenceOpened, LogLevel.Information, "Evidence: {Trees} trees kept in {Directory} ({Indexed} messages indexed in memory), signing tree {TreeId} with the key whose public key is {PublicKeyHex}")]
    public static partial void EvidenceOpened(ILogger logger, int trees, string directory, int indexed, ulong treeId, string publicKeyHex);

    [LoggerMessage(EventIds.EvidenceTreeClosed, LogLevel.Debug, "Evidence tree {TreeId} closed at {Size} statements; tree {NextTreeId} begun")]
    public static partial void EvidenceTreeClosed(ILogger logger, ulong treeId, long size, ulong nextTreeId);

    [LoggerMessage(EventIds.EvidenceWriteFailed, LogLevel.Error, "Evidence could not be written to {Path}: {Reason}; statements are dropped (counted in relayd.evidence.dropped) until the relay restarts")]
    public static partial void EvidenceWriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventIds.EvidenceTreesDeleted, LogLevel.Information, "Evidence: {Trees} closed trees deleted ({Reason}); their proofs are no longer served")]
    public static partial void EvidenceTreesDeleted(ILogger logger, int trees, string reason);

    [LoggerMessage(EventIds.EvidenceStatementsDropped, LogLevel.Warning, "Evidence: {Dropped} statements dropped so far because the evidence writer fell behind (queue of {Capacity} full)")]
    public static partial void EvidenceStatementsDropped(ILogger logger, long dropped, int capacity);
}
