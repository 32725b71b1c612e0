using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

/// <summary>
/// Envelope refusals in the journal without a flood: per (sender partner, error code), the first refusal in an
/// interval is logged in full at warning level (so <c>journalctl RELAYD_PARTNER=alpha</c> shows why alpha's envelopes
/// are refused); repeats are counted and logged as one summary when the interval ends. Keys are partners x codes: few.
/// </summary>
internal sealed class EnvelopeRefusalLog(TimeSpan interval, ILogger logger)
{
    private readonly long _intervalMs = (long)interval.TotalMilliseconds;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Partner, ErrorCode Code), Window> _windows = [];
    private readonly List<((string Partner, ErrorCode Code) Key, Window Window)> _due = [];

    /// <summary>Counts one refusal; true when the caller logs it in full (the first of its partner and code in the interval).</summary>
    public bool ShouldLog(string partnerId, ErrorCode code, long nowMs)
    {
        lock (_lock)
        {
            if (_windows.TryGetValue((partnerId, code), out Window window) && nowMs - window.StartMs < _intervalMs)
            {
                _windows[(partnerId, code)] = window with { Repeats = window.Repeats + 1 };
                return false;
            }

            if (window.Repeats > 0)
            {
                Summarize((partnerId, code), window, nowMs);
            }

            _windows[(partnerId, code)] = new Window(nowMs, 0);
            return true;
        }
    }

    /// <summary>Logs the summary of every interval that has ended; the heartbeat calls it about once a second.</summary>
    public void Flush(long nowMs)
    {
        lock (_lock)
        {
            foreach (((string Partner, ErrorCode Code) key, Window window) in _windows)
            {
                if (nowMs - window.StartMs >= _intervalMs)
                {
                    _due.Add((key, window));
                }
            }

            foreach (((string Partner, ErrorCode Code) key, Window window) in _due)
            {
                _windows.Remove(key);
                if (window.Repeats > 0)
                {
                    Summarize(key, window, nowMs);
                }
            }

            _due.Clear();
        }
    }

    private void Summarize((string Partner, ErrorCode Code) key, Window window, long nowMs) =>
        RelayLog.EnvelopeRefusalsSummarized(logger, window.Repeats, key.Partner, key.Code, Math.Max(1, (nowMs - window.StartMs) / 1000));

    private readonly record struct Window(long StartMs, long Repeats);
}
