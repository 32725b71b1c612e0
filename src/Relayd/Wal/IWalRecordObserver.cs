namespace Relayd.Wal;

/// <summary>
/// Told of each valid record as <see cref="WriteAheadLog.Open(WalOptions, Microsoft.Extensions.Logging.ILogger, IWalRecordObserver?)"/>
/// checks it. The payload is a view into the scan's read window: valid only during the call.
/// </summary>
public interface IWalRecordObserver
{
    void OnRecord(in WalRecord record);
}
