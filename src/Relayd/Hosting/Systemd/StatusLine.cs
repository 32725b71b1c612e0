using System.Diagnostics;
using System.Diagnostics.Metrics;
using Relayd.Routing;
using Relayd.Storage;

namespace Relayd.Hosting.Systemd;

/// <summary>
/// The one-line summary systemd shows in <c>systemctl status relayd</c>: partners connected, envelopes accepted per
/// second since the last line, backlog. The rate comes from the relay's own <c>relayd.envelopes.accepted</c>
/// counter through a <see cref="MeterListener"/>, so the data path counts nothing twice.
/// </summary>
internal sealed class StatusLine : IDisposable
{
    private readonly Relay _relay;
    private readonly MeterListener _listener = new();
    private long _accepted;
    private long _acceptedAtLastLine;
    private long _lastLineTimestamp = Stopwatch.GetTimestamp();

    public StatusLine(Relay relay)
    {
        _relay = relay;
        Instrument<long> accepted = relay.Metrics.EnvelopesAccepted;
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument, accepted))
            {
                listener.EnableMeasurementEvents(instrument, this);
            }
        };
        _listener.SetMeasurementEventCallback<long>(static (_, value, _, state) => Interlocked.Add(ref ((StatusLine)state!)._accepted, value));
        _listener.Start();
    }

    /// <summary>"serving: 2 of 3 partners connected (4 sessions), 1234 msg/s, backlog 56 (12 in the log only)".</summary>
    public string Next()
    {
        long now = Stopwatch.GetTimestamp();
        long accepted = Interlocked.Read(ref _accepted);
        double seconds = Math.Max(0.001, Stopwatch.GetElapsedTime(_lastLineTimestamp, now).TotalSeconds);
        double rate = (accepted - _acceptedAtLastLine) / seconds;
        _acceptedAtLastLine = accepted;
        _lastLineTimestamp = now;

        PartnerInfo[] partners = _relay.Partners.Partners;
        int connected = partners.Count(p => _relay.Sessions.Any(s => ReferenceEquals(s.Partner, p)));
        IReadOnlyList<PartnerBacklog> backlog = MailboxBacklog.Capture(_relay.Partners);
        long inMemory = backlog.Sum(b => b.InMemory);
        long logOnly = backlog.Sum(b => b.InLogOnly);
        return $"serving: {connected} of {partners.Length} partners connected ({_relay.Sessions.Count} sessions), {rate:F0} msg/s, backlog {inMemory + logOnly} ({logOnly} in the log only)";
    }

    public void Dispose() => _listener.Dispose();
}
