using System.Net;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;

namespace Relayd.Transport;

/// <summary>What was refused, for the wording of a summary line.</summary>
internal enum RefusalKind
{
    /// <summary>The TLS handshake failed (no, bad, expired, revoked or foreign certificate; TLS 1.2; garbage).</summary>
    TlsHandshake,

    /// <summary>No TLS handshake and Hello within the handshake timeout.</summary>
    HandshakeTimeout,

    /// <summary>TLS succeeded but the partner was refused (unknown or unapproved id, connection limit, bad Hello).</summary>
    Admission,
}

/// <summary>
/// Keeps refusals from flooding the journal: the first refusal per (kind, reason, remote address) in an interval is
/// logged in full; repeats in that interval are only counted, and logged as one summary line when it ends.
/// </summary>
/// <remarks>
/// Memory is bounded: at most <see cref="MaxTrackedKeys"/> keys; refusals beyond that (an address sweep) are counted
/// in one bucket with its own summary. Summaries are written by <see cref="Flush"/>, which the server's heartbeat
/// calls about once a second.
/// </remarks>
internal sealed class RefusalAggregator
{
    /// <summary>Distinct (kind, reason, address) keys per interval: bounds memory under an address sweep, and exceeds the addresses of any real misconfiguration.</summary>
    public const int MaxTrackedKeys = 1024;

    // The relayd.refusals kind tag of each RefusalKind, in its order, made once.
    private static readonly KeyValuePair<string, object?>[] KindTags =
        [RelayMetrics.KindTag("tls_handshake"), RelayMetrics.KindTag("handshake_timeout"), RelayMetrics.KindTag("admission")];

    private readonly Lock _lock = new();
    private readonly Dictionary<Key, Window> _windows = [];
    private readonly List<(Key Key, Window Window)> _due = [];
    private readonly ILogger _logger;
    private readonly RelayMetrics? _metrics;
    private readonly long _intervalMs;
    private long _untracked;
    private long _untrackedSinceMs;

    public RefusalAggregator(TimeSpan interval, ILogger logger, RelayMetrics? metrics = null)
    {
        _intervalMs = (long)interval.TotalMilliseconds;
        _logger = logger;
        _metrics = metrics;
        Envelopes = new EnvelopeRefusalLog(interval, logger);
    }

    /// <summary>Refused envelopes, per sender partner and code (summarized by the same <see cref="Flush"/>).</summary>
    public EnvelopeRefusalLog Envelopes { get; }

    /// <summary>
    /// Counts one refusal. True when the caller logs it in full (the first of its key in the interval); false when
    /// it is counted into the summary instead.
    /// </summary>
    public bool ShouldLog(RefusalKind kind, EndPoint? remote, string reason, long nowMs)
    {
        _metrics?.Refusals.Add(1, KindTags[(int)kind]);
        var key = new Key(kind, (remote as IPEndPoint)?.Address ?? IPAddress.None, reason);
        lock (_lock)
        {
            if (_windows.TryGetValue(key, out Window window) && nowMs - window.StartMs < _intervalMs)
            {
                _windows[key] = window with { Repeats = window.Repeats + 1 };
                return false;
            }

            if (window.Repeats > 0)
            {
                // Its interval ended before the heartbeat summarized it.
                Summarize(key, window, nowMs);
            }

            if (_windows.Count >= MaxTrackedKeys && !_windows.ContainsKey(key))
            {
                if (_untracked++ == 0)
                {
                    _untrackedSinceMs = nowMs;
                }

                return false;
            }

            _windows[key] = new Window(nowMs, 0);
            return true;
        }
    }

    /// <summary>Logs the summary of every interval that has ended and forgets its key.</summary>
    public void Flush(long nowMs)
    {
        Envelopes.Flush(nowMs);
        long untracked = 0;
        long untrackedSeconds = 0;
        lock (_lock)
        {
            foreach ((Key key, Window window) in _windows)
            {
                if (nowMs - window.StartMs >= _intervalMs)
                {
                    _due.Add((key, window));
                }
            }

            foreach ((Key key, _) in _due)
            {
                _windows.Remove(key);
            }

            if (_untracked > 0 && nowMs - _untrackedSinceMs >= _intervalMs)
            {
                untracked = _untracked;
                untrackedSeconds = (nowMs - _untrackedSinceMs) / 1000;
                _untracked = 0;
            }
        }

        foreach ((Key key, Window window) in _due)
        {
            if (window.Repeats > 0)
            {
                Summarize(key, window, nowMs);
            }
        }

        _due.Clear();
        if (untracked > 0)
        {
            RelayLog.UntrackedRefusalsSummarized(_logger, untracked, untrackedSeconds, MaxTrackedKeys);
        }
    }

    private void Summarize(Key key, Window window, long nowMs)
    {
        string what = key.Kind switch
        {
            RefusalKind.TlsHandshake => "TLS handshakes",
            RefusalKind.HandshakeTimeout => "connections without a handshake in time",
            _ => "connections",
        };
        RelayLog.RefusalsSummarized(_logger, window.Repeats, what, key.Address, Math.Max(1, (nowMs - window.StartMs) / 1000), key.Reason);
    }

    private readonly record struct Key(RefusalKind Kind, IPAddress Address, string Reason);

    private readonly record struct Window(long StartMs, long Repeats);
}
