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

    /// <summary>True while the slab sits in the pool (guards against returning it twice).</summary>
    public bool IsPooled { get; private set; }

    public static DeliverySlab Rent(int minimumBytes)
    {
        if (minimumBytes > DefaultBytes)
        {
            return new DeliverySlab(ArrayPool<byte>.Shared.Rent(minimumBytes));
        }

        DeliverySlab slab = SlabPool.Rent() ?? new DeliverySlab(GC.AllocateUninitializedArray<byte>(DefaultBytes));
        slab.IsPooled = false;
        return slab;
    }

    public void Return()
    {
        Written = 0;
        LiveEntries = 0;
        WritesInProgress = 0;
        IsPooled = true;
        if (Buffer.Length != DefaultBytes)
        {
            ArrayPool<byte>.Shared.Return(Buffer);
            Buffer = [];
            return;
        }

        SlabPool.Return(this);
    }

    /// <summary>
    /// Default-size slabs kept for reuse, buffer and all. ArrayPool.Shared keeps only a few arrays of this size per
    /// core and drops the rest, which under load turned into fresh large-object allocations; this pool keeps up to
    /// <see cref="RetainedSlabs"/> of them (64 MiB).
    /// </summary>
    private static class SlabPool
    {
        public const int RetainedSlabs = 256;
        private static readonly DeliverySlab?[] Slabs = new DeliverySlab?[RetainedSlabs];
        private static readonly Lock Guard = new();
        private static int _count;

        public static DeliverySlab? Rent()
        {
            lock (Guard)
            {
                if (_count == 0)
                {
                    return null;
                }

                DeliverySlab slab = Slabs[--_count]!;
                Slabs[_count] = null;
                return slab;
            }
        }

        public static void Return(DeliverySlab slab)
        {
            lock (Guard)
            {
                if (_count < RetainedSlabs)
                {
                    Slabs[_count++] = slab;
                }
            }
        }
    }
}
