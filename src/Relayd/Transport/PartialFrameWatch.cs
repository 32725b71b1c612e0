using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

/// <summary>
/// Bytes one partner holds in partially received frames, across all its connections, against
/// <see cref="RelayLimits.PartialFrameBytesPerPartner"/>.
/// </summary>
internal sealed class PartialFrameBudget
{
    private long _held;

    public long Held => Volatile.Read(ref _held);

    /// <summary>Adds <paramref name="bytes"/> unless that takes the partner above <paramref name="cap"/>.</summary>
    public bool TryHold(long bytes, long cap, out long total)
    {
        // Compare-and-swap, not add-then-undo: a refused hold never shows in the total, so it cannot make another
        // connection's hold fail too.
        long current = Volatile.Read(ref _held);
        while (true)
        {
            total = current + bytes;
            if (total > cap)
            {
                return false;
            }

            long seen = Interlocked.CompareExchange(ref _held, total, current);
            if (seen == current)
            {
                return true;
            }

            current = seen;
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _held, -bytes);
}

/// <summary>
/// Watches the frame a session is partway through receiving (its length read, its body not yet whole): the rate its
/// body arrives at against <see cref="RelayLimits.MinFrameDataRate"/>, and its bytes against the partner's
/// <see cref="PartialFrameBudget"/>. Used by the session's reader only.
/// </summary>
/// <remarks>
/// Like Kestrel's MinRequestBodyDataRate: the rate is the bytes received since the frame began over the time since,
/// enforced once the grace period has passed; time the relay spent not reading (its own backpressure) is left out.
/// </remarks>
internal sealed class PartialFrameWatch
{
    private readonly RelayLimits _limits;
    private readonly PartialFrameBudget _budget;
    private readonly string _partnerId;
    private long _startMs;   // when the frame now pending began to be watched; 0: none pending
    private long _baseBytes; // bytes of it held then (arrived together with earlier frames: not slow)
    private long _pausedMs;  // relay-side waits since _startMs
    private long _held;      // bytes of it held now, charged to the budget

    public PartialFrameWatch(RelayLimits limits, PartialFrameBudget budget, string partnerId)
    {
        _limits = limits;
        _budget = budget;
        _partnerId = partnerId;
    }

    /// <summary>
    /// After a pass of the reader: <paramref name="held"/> bytes are left of a frame not yet whole (0: none), and
    /// <paramref name="newFrame"/> says whether earlier frames were consumed in this pass (so it is another frame).
    /// Returns the error to close the session with, or null.
    /// </summary>
    public RelayException? Observe(long held, bool newFrame, long nowMs)
    {
        if (held == 0)
        {
            Release();
            return null;
        }

        if (newFrame || _startMs == 0)
        {
            _startMs = nowMs;
            _baseBytes = held;
            _pausedMs = 0;
        }

        long cap = _limits.PartialFrameBytesPerPartner;
        if (held > _held && !_budget.TryHold(held - _held, cap, out long total))
        {
            Release(); // the frame is discarded with the session: its bytes are free for the partner's other connections now
            return new RelayException(
                ErrorCode.RetryLater,
                $"partner '{_partnerId}' would hold {total} bytes in partial frames across its connections, above the limit of {cap} (max_partial_frame_bytes_per_partner)",
                (uint)_limits.QueueFullRetryAfter.TotalMilliseconds);
        }

        if (held < _held)
        {
            _budget.Release(_held - held);
        }

        _held = held;
        long elapsedMs = nowMs - _startMs - _pausedMs;
        long arrived = held - _baseBytes;
        if (elapsedMs > _limits.MinFrameDataRateGracePeriod.TotalMilliseconds && arrived * 1000 < (long)_limits.MinFrameDataRate * elapsedMs)
        {
            return new RelayException(ErrorCode.IdleTimeout, $"frame body arriving at {arrived * 1000 / elapsedMs} bytes/s over {elapsedMs} ms, below the minimum of {_limits.MinFrameDataRate} bytes/s (min_frame_data_rate)");
        }

        return null;
    }

    /// <summary>The reader waited <paramref name="ms"/> on the relay's side (log space, the partner's acks): not the partner's slowness.</summary>
    public void AddPause(long ms)
    {
        if (_startMs != 0)
        {
            _pausedMs += ms;
        }
    }

    /// <summary>No partial frame any more (it completed, or the session ends): gives its bytes back to the partner.</summary>
    public void Release()
    {
        _budget.Release(_held);
        _held = 0;
        _startMs = 0;
    }
}
