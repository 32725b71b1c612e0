using System.Buffers;

namespace Relayd.Routing;

/// <summary>
/// A pooled, append-only block of encoded Deliver frames. Consecutive deliveries of one shard sit next to each other,
/// so a session writes many of them with one TLS write straight from here. Returned to the pool when every delivery
/// in it is acknowledged and no write is reading it. All members are guarded by the owning shard's lock.
/// </summary>
internal sealed class DeliverySlab
{
    /// <summary>Default slab size: large enough to batch hundreds of small envelopes per write.</summary>
    public const int DefaultBytes = 256 * 1024;

    private DeliverySlab(byte[] buffer) => Buffer = buffer;

    public byte[] Buffer { get; private set; }

    public int Written { get; set; }

    /// <summary>Deliveries in this slab not yet acknowledged.</summary>
    public int LiveEntries { get; set; }

    /// <summary>Writes to a socket currently reading from this slab.</summary>
    public int WritesInProgress { get; set; }

    public int Capacity => Buffer.Length;

    public int Free => Buffer.Length - Written;

    public bool IsReleasable => LiveEntries == 0 && WritesInProgress == 0;

    public static DeliverySlab Rent(int minimumBytes) =>
        new(ArrayPool<byte>.Shared.Rent(Math.Max(minimumBytes, DefaultBytes)));

    public void Return()
    {
        ArrayPool<byte>.Shared.Return(Buffer);
        Buffer = [];
        Written = 0;
    }
}
