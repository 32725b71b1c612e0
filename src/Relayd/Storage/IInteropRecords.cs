namespace Relayd.Storage;

/// <summary>
/// A durable log of the relay's own interop records (abuse reports, notices acknowledged, read receipts held), apart
/// from the envelope store: appended from any thread, each append durable (fdatasync'ed) when its task completes,
/// replayed whole at start.
/// </summary>
internal interface IInteropRecords : IDisposable
{
    /// <summary>Appends a record of <paramref name="type"/> (1..255); completes once it is durable.</summary>
    /// <exception cref="IOException">The log failed or its disk is full: the record is not kept.</exception>
    Task AppendAsync(byte type, ReadOnlyMemory<byte> payload);

    /// <summary>Every record, in append order (call once, at start, before any append).</summary>
    IEnumerable<(byte Type, ReadOnlyMemory<byte> Payload)> ReadAll();

    /// <summary>The largest payload one record may carry.</summary>
    int MaxPayloadBytes { get; }
}
