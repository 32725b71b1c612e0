namespace Relayd;

/// <summary>
/// Every hard limit of the relay in one place. Each has a safe default; setters reject values that cannot work.
/// </summary>
public sealed class RelayLimits
{
    private static readonly TimeSpan OneMillisecond = TimeSpan.FromMilliseconds(1);
    private const int MaxShardCount = 1024;

    private int _maxFrameBytes = 1024 * 1024;
    private TimeSpan _handshakeTimeout = TimeSpan.FromSeconds(5);
    private TimeSpan _idleTimeout = TimeSpan.FromSeconds(30);
    private int _maxConnectionsPerPartner = 16;
    private int _shardCount = DefaultShardCount;
    private long _maxQueuedBytesPerPartner = 64L * 1024 * 1024;
    private int _maxQueuedEnvelopesPerPartner = 1_000_000;
    private int _deliveryWindowEnvelopes = 8192;
    private int _deliveryWindowBytes = 8 * 1024 * 1024;
    private int _controlPauseBytes = 1024 * 1024;
    private int _inputBufferBytes = 64 * 1024;
    private TimeSpan _dedupWindow = TimeSpan.FromHours(24);
    private int _dedupCapacityPerPartner = 1_000_000;
    private TimeSpan _defaultRetention = TimeSpan.FromDays(30);
    private TimeSpan _shutdownTimeout = TimeSpan.FromSeconds(10);
    private TimeSpan _queueFullRetryAfter = TimeSpan.FromMilliseconds(250);
    private int _heldReceiptsPerPartner = 100_000;
    private int _minFrameDataRate = 4096;
    private TimeSpan _minFrameDataRateGracePeriod = TimeSpan.FromSeconds(10);
    private long? _maxPartialFrameBytesPerPartner;
    private TimeSpan _writeTimeout = TimeSpan.FromSeconds(30);
    private TimeSpan _refusalLogInterval = TimeSpan.FromSeconds(10);
    private int _listenBacklog = 512;

    /// <summary>
    /// Largest frame body a partner may send, in bytes. Checked against the declared length before the body is read.
    /// Media travels as chunks within this limit. Defaults to 1 MiB.
    /// </summary>
    public int MaxFrameBytes
    {
        get => _maxFrameBytes;
        set => _maxFrameBytes = InRange(value, 1024, 64 * 1024 * 1024, nameof(MaxFrameBytes));
    }

    /// <summary>Time allowed from TCP accept to a completed TLS handshake and Hello, 1 ms to 10 minutes. Defaults to 5 seconds.</summary>
    public TimeSpan HandshakeTimeout
    {
        get => _handshakeTimeout;
        set => _handshakeTimeout = InRange(value, OneMillisecond, TimeSpan.FromMinutes(10), nameof(HandshakeTimeout));
    }

    /// <summary>
    /// After this much silence from a partner the relay sends a Ping; after twice it, it closes the connection with
    /// IDLE_TIMEOUT. 1 ms to 1 day (Welcome announces it as a uint32 of milliseconds). Defaults to 30 seconds.
    /// </summary>
    public TimeSpan IdleTimeout
    {
        get => _idleTimeout;
        set => _idleTimeout = InRange(value, OneMillisecond, TimeSpan.FromDays(1), nameof(IdleTimeout));
    }

    /// <summary>Concurrent connections one partner may hold. Defaults to 16.</summary>
    public int MaxConnectionsPerPartner
    {
        get => _maxConnectionsPerPartner;
        set => _maxConnectionsPerPartner = CheckConnectionsPerPartner(value, nameof(MaxConnectionsPerPartner));
    }

    /// <summary>
    /// Shard queues per recipient partner; a conversation (recipient partner, recipient user) always maps to one
    /// shard, which keeps its order. 1 to 1024. Defaults to the processor count (at most 1024).
    /// </summary>
    public int ShardCount
    {
        get => _shardCount;
        set => _shardCount = InRange(value, 1, MaxShardCount, nameof(ShardCount));
    }

    /// <summary>What <see cref="ShardCount"/> defaults to (and <c>shard_count = 0</c> stands for): the processor count, at most 1024.</summary>
    internal static int DefaultShardCount => Math.Min(Environment.ProcessorCount, MaxShardCount);

    /// <summary>
    /// Bytes of envelopes held in memory for one recipient partner (offline, or not acknowledging). Beyond it envelopes
    /// wait in the write-ahead log only and are read back in order as memory frees. Defaults to 64 MiB: with every
    /// partner offline at once, memory stays predictable whatever the backlog on disk. 1 MiB to 1 TiB.
    /// </summary>
    public long MaxQueuedBytesPerPartner
    {
        get => _maxQueuedBytesPerPartner;
        set => _maxQueuedBytesPerPartner = InRange(value, 1024 * 1024, 1L << 40, nameof(MaxQueuedBytesPerPartner));
    }

    /// <summary>Envelopes held in memory for one recipient partner (beyond it, as above). Defaults to 1,000,000.</summary>
    public int MaxQueuedEnvelopesPerPartner
    {
        get => _maxQueuedEnvelopesPerPartner;
        set => _maxQueuedEnvelopesPerPartner = InRange(value, 16, int.MaxValue, nameof(MaxQueuedEnvelopesPerPartner));
    }

    /// <summary>Deliveries sent to one session but not yet acknowledged, per shard. Defaults to 8192.</summary>
    public int DeliveryWindowEnvelopes
    {
        get => _deliveryWindowEnvelopes;
        set => _deliveryWindowEnvelopes = InRange(value, 1, 1_000_000, nameof(DeliveryWindowEnvelopes));
    }

    /// <summary>Bytes sent to one session but not yet acknowledged, per shard. Defaults to 8 MiB.</summary>
    public int DeliveryWindowBytes
    {
        get => _deliveryWindowBytes;
        set => _deliveryWindowBytes = InRange(value, 64 * 1024, int.MaxValue, nameof(DeliveryWindowBytes));
    }

    /// <summary>
    /// Acks and other replies buffered for a partner that is not reading them. Past it the relay stops reading that
    /// partner's socket until it catches up. Defaults to 1 MiB.
    /// </summary>
    public int ControlPauseBytes
    {
        get => _controlPauseBytes;
        set => _controlPauseBytes = InRange(value, 4096, 256 * 1024 * 1024, nameof(ControlPauseBytes));
    }

    /// <summary>Size of each read from a partner's TLS stream. Defaults to 64 KiB.</summary>
    public int InputBufferBytes
    {
        get => _inputBufferBytes;
        set => _inputBufferBytes = InRange(value, 4096, 16 * 1024 * 1024, nameof(InputBufferBytes));
    }

    /// <summary>
    /// How long a (sender partner, message id) is remembered so that a resend gets the original Ack, 1 ms to 365 days.
    /// Defaults to 24 hours.
    /// </summary>
    public TimeSpan DedupWindow
    {
        get => _dedupWindow;
        set => _dedupWindow = InRange(value, OneMillisecond, TimeSpan.FromDays(365), nameof(DedupWindow));
    }

    /// <summary>Most message ids remembered per sender partner; the oldest are forgotten first. Defaults to 1,000,000.</summary>
    public int DedupCapacityPerPartner
    {
        get => _dedupCapacityPerPartner;
        set => _dedupCapacityPerPartner = InRange(value, 16, 100_000_000, nameof(DedupCapacityPerPartner));
    }

    /// <summary>
    /// How long an envelope without its own expiry waits for its recipient, 1 ms to 365 days. Defaults to 30 days
    /// (Signal's offline queue TTL).
    /// </summary>
    public TimeSpan DefaultRetention
    {
        get => _defaultRetention;
        set => _defaultRetention = InRange(value, OneMillisecond, TimeSpan.FromDays(365), nameof(DefaultRetention));
    }

    /// <summary>
    /// On SIGTERM, time allowed for in-flight writes after GoAway, 1 ms to 1 hour (the systemd unit's TimeoutStopSec
    /// must exceed it by a few seconds). Defaults to 10 seconds.
    /// </summary>
    public TimeSpan ShutdownTimeout
    {
        get => _shutdownTimeout;
        set => _shutdownTimeout = InRange(value, OneMillisecond, TimeSpan.FromHours(1), nameof(ShutdownTimeout));
    }

    /// <summary>
    /// The retry_after_ms sent with STORAGE_FULL, RETRY_LATER and SHUTTING_DOWN (config key <c>limits.retry_after_ms</c>;
    /// the property keeps its first name, from when QUEUE_FULL was the only such code), 1 ms to 1 hour. Defaults to 250 ms.
    /// </summary>
    public TimeSpan QueueFullRetryAfter
    {
        get => _queueFullRetryAfter;
        set => _queueFullRetryAfter = InRange(value, OneMillisecond, TimeSpan.FromHours(1), nameof(QueueFullRetryAfter));
    }

    /// <summary>
    /// Receipts kept for a sender partner while none of its connections is open; delivered when it reconnects.
    /// Beyond it the oldest are dropped (and logged). Defaults to 100,000 (about 3 MiB).
    /// </summary>
    public int HeldReceiptsPerPartner
    {
        get => _heldReceiptsPerPartner;
        set => _heldReceiptsPerPartner = InRange(value, 0, 100_000_000, nameof(HeldReceiptsPerPartner));
    }

    /// <summary>
    /// Slowest rate, in bytes per second, at which the body of a frame may arrive once its length prefix is read;
    /// a partner below it after <see cref="MinFrameDataRateGracePeriod"/> is closed with IDLE_TIMEOUT. Time the relay
    /// itself spends not reading (its log is busy, the partner is not reading its acks) does not count. Partners are
    /// servers, so this is higher than Kestrel's MinRequestBodyDataRate (240 bytes/s, for phones on 2G) while staying
    /// far below any link between servers; a full 1 MiB frame still gets over 4 minutes. Defaults to 4,096 bytes/s.
    /// </summary>
    public int MinFrameDataRate
    {
        get => _minFrameDataRate;
        set => _minFrameDataRate = InRange(value, 1, 1024 * 1024 * 1024, nameof(MinFrameDataRate));
    }

    /// <summary>
    /// How long a frame body may arrive below <see cref="MinFrameDataRate"/> before the rate is enforced: rides out
    /// TCP slow start and a few retransmission timeouts on a lossy link (Kestrel uses 5 seconds). Defaults to 10 seconds.
    /// </summary>
    public TimeSpan MinFrameDataRateGracePeriod
    {
        get => _minFrameDataRateGracePeriod;
        set => _minFrameDataRateGracePeriod = InRange(value, OneMillisecond, TimeSpan.FromMinutes(10), nameof(MinFrameDataRateGracePeriod));
    }

    /// <summary>
    /// Bytes one partner may hold in partially received frames across all its connections; the connection whose
    /// frame would go beyond it is closed with RETRY_LATER. Never less than <see cref="MaxFrameBytes"/> applies, so one
    /// frame of the largest size always fits. Null: four times <see cref="MaxFrameBytes"/>. Defaults to null.
    /// </summary>
    public long? MaxPartialFrameBytesPerPartner
    {
        get => _maxPartialFrameBytesPerPartner;
        set => _maxPartialFrameBytesPerPartner = value is null or (>= 1024 and <= 64L * 1024 * 1024 * 1024) ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxPartialFrameBytesPerPartner), value, "must be between 1024 and 68719476736, or null");
    }

    /// <summary>The cap <see cref="MaxPartialFrameBytesPerPartner"/> stands for (its default applied).</summary>
    public long PartialFrameBytesPerPartner => Math.Max(_maxPartialFrameBytesPerPartner ?? 4L * _maxFrameBytes, _maxFrameBytes + Protocol.Internal.FrameReader.MaxVarintBytes);

    /// <summary>
    /// A write to a partner that makes no progress for this long (its process hangs while its kernel keeps the
    /// connection open) aborts the session; its conversations move to the partner's other connections at once.
    /// Progress is counted per TLS record (16 KiB), so a slow but reading partner is not cut. Defaults to 30 seconds.
    /// </summary>
    public TimeSpan WriteTimeout
    {
        get => _writeTimeout;
        set => _writeTimeout = InRange(value, OneMillisecond, TimeSpan.FromHours(1), nameof(WriteTimeout));
    }

    /// <summary>
    /// Refusals (TLS, admission) are logged in full once per reason and remote address in each interval; repeats in
    /// it are counted and logged as one summary line at its end, so a flood of bad handshakes cannot flood the
    /// journal. Defaults to 10 seconds.
    /// </summary>
    public TimeSpan RefusalLogInterval
    {
        get => _refusalLogInterval;
        set => _refusalLogInterval = InRange(value, OneMillisecond, TimeSpan.FromHours(1), nameof(RefusalLogInterval));
    }

    /// <summary>
    /// Connections the kernel completes and queues before the relay accepts them (the backlog of listen(2); the kernel
    /// caps it at net.core.somaxconn). After a restart every partner reconnects at once, up to
    /// <see cref="MaxConnectionsPerPartner"/> connections each; beyond the backlog the kernel drops SYNs and they retry
    /// after a second or more. 1 to 65535. Defaults to 512 (Kestrel's default).
    /// </summary>
    public int ListenBacklog
    {
        get => _listenBacklog;
        set => _listenBacklog = InRange(value, 1, 65_535, nameof(ListenBacklog));
    }

    /// <summary>The bounds of <see cref="MaxConnectionsPerPartner"/>, which a partner's own limit shares.</summary>
    internal static int CheckConnectionsPerPartner(int value, string name) => InRange(value, 1, 10_000, name);

    private static int InRange(int value, int min, int max, string name) =>
        value >= min && value <= max ? value : throw new ArgumentOutOfRangeException(name, value, $"must be between {min} and {max}");

    private static long InRange(long value, long min, long max, string name) =>
        value >= min && value <= max ? value : throw new ArgumentOutOfRangeException(name, value, $"must be between {min} and {max}");

    private static TimeSpan InRange(TimeSpan value, TimeSpan min, TimeSpan max, string name) =>
        value >= min && value <= max ? value : throw new ArgumentOutOfRangeException(name, value, $"must be between {Durations.Describe(min)} and {Durations.Describe(max)}");
}
