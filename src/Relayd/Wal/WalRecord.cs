namespace Relayd.Wal;

/// <summary>One record read back from the log.</summary>
/// <param name="Position">Where the record starts (what <see cref="WriteAheadLog.TryAppend(byte, ReadOnlySpan{byte}, out WalPosition)"/> returned).</param>
/// <param name="Type">The caller-defined record type, 1..255.</param>
/// <param name="Payload">The payload exactly as appended (the header span followed by the body).</param>
public readonly record struct WalRecord(WalPosition Position, byte Type, ReadOnlyMemory<byte> Payload)
{
    /// <summary>The position just after this record's padding.</summary>
    public WalPosition End => WriteAheadLog.EndOf(Position, Payload.Length);
}
