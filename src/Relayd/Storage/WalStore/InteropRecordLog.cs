using System.Buffers;
using Microsoft.Extensions.Logging;
using Relayd.Wal;

namespace Relayd.Storage.WalStore;

/// <summary>
/// <see cref="IInteropRecords"/> on a write-ahead log of its own in <c>&lt;wal.dir&gt;/interop/</c>: the envelope
/// log's retention deletes segments whose envelopes are settled, which knows nothing of reports and held receipts,
/// so they are not mixed in. Small segments: reports are rare, and each segment is pre-written in full.
/// </summary>
internal sealed class InteropRecordLog : IInteropRecords
{
    /// <summary>The subdirectory of the WAL directory it lives in.</summary>
    public const string DirectoryName = "interop";

    private const int SegmentBytes = 4 * 1024 * 1024;
    private const int WriteBufferBytes = 1024 * 1024;

    private readonly WriteAheadLog _log;

    private InteropRecordLog(WriteAheadLog log) => _log = log;

    public int MaxPayloadBytes => _log.MaxPayloadBytes;

    public static InteropRecordLog Open(StorageOptions storage, ILogger logger)
    {
        WalOptions main = storage.ToWalOptions();
        var options = new WalOptions
        {
            Directory = Path.Combine(storage.Directory, DirectoryName),
            SegmentBytes = SegmentBytes,
            WriteBufferBytes = WriteBufferBytes,
            FileSync = main.FileSync,
            CommitPolicy = main.CommitPolicy,
        };
        return new InteropRecordLog(WriteAheadLog.Open(options, logger));
    }

    public async Task AppendAsync(byte type, ReadOnlyMemory<byte> payload)
    {
        WalPosition position;
        try
        {
            while (!_log.TryAppend(type, payload.Span, ReadOnlySequence<byte>.Empty, out position))
            {
                await _log.WaitForSpaceAsync();
            }
        }
        catch (Exception ex) when (ex is WalDiskFullException or WalFailedException)
        {
            throw new IOException($"the relay's interop log could not take the record: {ex.Message}", ex);
        }

        try
        {
            await _log.WaitForCommitAsync(WriteAheadLog.EndOf(position, payload.Length));
        }
        catch (WalFailedException ex)
        {
            throw new IOException($"the relay's interop log failed: {ex.Message}", ex);
        }
    }

    public IEnumerable<(byte Type, ReadOnlyMemory<byte> Payload)> ReadAll()
    {
        foreach (WalRecord record in _log.ReadAll())
        {
            yield return (record.Type, record.Payload.ToArray());
        }
    }

    public void Dispose() => _log.Dispose();
}
