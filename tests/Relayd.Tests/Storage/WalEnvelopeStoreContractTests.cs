using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Storage;
using Relayd.Storage.WalStore;
using Relayd.Wal;

namespace Relayd.Tests.Storage;

/// <summary>The envelope store contract on the write-ahead log store: real segment files, real fdatasync.</summary>
public sealed class WalEnvelopeStoreContractTests : EnvelopeStoreContract
{
    private protected override IEnvelopeStore Open(string directory, long reserveBytes) =>
        WalEnvelopeStore.Open(
            new StorageOptions { Directory = directory, SegmentBytes = 1024 * 1024, ReserveBytes = reserveBytes, RetentionInterval = TimeSpan.FromMilliseconds(1), Sync = true },
            NullLogger.Instance);

    private protected override bool HasReclaimed(IEnvelopeStore store, StoreRef reference) =>
        ((WalEnvelopeStore)store).Log.Segments[0] > WalPosition.FromUInt64(reference.Value).Segment;
}
