using Microsoft.Extensions.Logging;
using Relayd.Wal;

namespace Relayd.Storage.WalStore;

/// <summary>Where a record of the consent log ends, opaque outside the WAL store (packed log position).</summary>
internal readonly record struct ConsentLogMark(ulong Packed)
{
    /// <summary>The segment the mark lies in: what retention deletes below.</summary>
    public ulong Segment => WalPosition.FromUInt64(Packed).Segment;

    public override string ToString() => WalPosition.FromUInt64(Packed).ToString();
}

/// <summary>
/// The consent store's log: a <see cref="WriteAheadLog"/> of its own (group commit, fdatasync, CRC, torn-tail
/// recovery) seen through marks, so that log positions stay inside the WAL store.
/// </summary>
internal sealed class WalConsentLog : IDisposable
{
    private readonly WriteAheadLog _log;

    private WalConsentLog(WriteAheadLog log) => _log = log;

    /// <summary>Raised once if the log fails (a write or fdatasync error): nothing more is appended.</summary>
    public event Action<Exception>? Failed
    {
        add => _log.Failed += value;
        remove => _log.Failed -= value;
    }

    public string Directory => _log.Directory;

    public int MaxPayloadBytes => _log.MaxPayloadBytes;

    /// <summary>fdatasyncs done so far.</summary>
    public long SyncCount => _log.SyncCount;

    /// <summary>The end of everything durable (after opening: of everything recovered).</summary>
    public ConsentLogMark Durable => new(_log.DurablePosition.ToUInt64());

    /// <exception cref="WalCorruptionException">A durable record is damaged.</exception>
    public static WalConsentLog Open(WalOptions options, ILogger logger) => new(WriteAheadLog.Open(options, logger));

    /// <summary>The records from <paramref name="from"/> on (default: all), in log order.</summary>
    public IEnumerable<(byte Type, ReadOnlyMemory<byte> Payload)> ReadFrom(ConsentLogMark from)
    {
        foreach (WalRecord record in _log.ReadAll(WalPosition.FromUInt64(from.Packed)))
        {
            yield return (record.Type, record.Payload);
        }
    }

    /// <summary>Appends a record (never syncs); false when the write buffer is full.</summary>
    /// <exception cref="WalException">The log failed or the disk is full.</exception>
    public bool TryAppend(byte type, ReadOnlySpan<byte> payload, out ConsentLogMark end)
    {
        if (!_log.TryAppend(type, payload, out WalPosition position))
        {
            end = default;
            return false;
        }

        end = new ConsentLogMark(WriteAheadLog.EndOf(position, payload.Length).ToUInt64());
        return true;
    }

    /// <summary>Completes with true once the record ending at <paramref name="end"/> is durable; false when the log failed first.</summary>
    public async Task<bool> WhenDurableAsync(ConsentLogMark end)
    {
        try
        {
            await _log.WaitForCommitAsync(WalPosition.FromUInt64(end.Packed));
            return true;
        }
        catch (Exception ex) when (ex is WalException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>Deletes the segments wholly before the segment of <paramref name="mark"/> (a snapshot covers them).</summary>
    public void DeleteBefore(ConsentLogMark mark) => _log.DeleteSegmentsBefore(mark.Segment);

    public void Dispose() => _log.Dispose();
}
