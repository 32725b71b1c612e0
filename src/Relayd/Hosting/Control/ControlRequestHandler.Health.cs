using System.Globalization;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Support.Health;

namespace Relayd.Hosting.Control;

internal sealed partial class ControlRequestHandler
{
    // A backlog older than this with sessions up reads as "connected but not taking it"; younger is normal queueing.
    private static readonly TimeSpan StuckBacklogAge = TimeSpan.FromSeconds(30);

    /// <summary><c>health PARTNER</c>: the partner's health counters, read-only (not logged as an action).</summary>
    private ControlResponse Health(ControlRequest request)
    {
        if (request.Partner is not { Length: > 0 } id)
        {
            return ControlResponse.Failed(ControlErrors.MissingArgument, "health needs \"partner\": the partner id");
        }

        if (_relay.Health is not { } recorder)
        {
            return ControlResponse.Failed(ControlErrors.NotAvailable, "partner health is off on this relay ([health] enabled = false)");
        }

        PartnerInfo? partner = _relay.Partners.Find(id);
        if (partner is null)
        {
            return ControlResponse.Failed(ControlErrors.UnknownPartner, $"partner '{id}' is not approved on this relay");
        }

        return new ControlResponse { Ok = true, Health = HealthViewOf(recorder.Report(partner), partner.IsSuspended) };
    }

    internal static HealthView HealthViewOf(PartnerHealthReport report, bool suspended)
    {
        HealthCounters c = report.Counters;
        var view = new HealthView
        {
            Partner = report.Partner,
            At = DateTimeOffset.FromUnixTimeMilliseconds(report.AtMs),
            SessionsNow = report.SessionsNow,
            Suspended = suspended,
            ConnectsLastHour = c.ConnectsLastHour,
            DisconnectsLastHour = [.. c.DisconnectsLastHour.Select(d => new CountView { Name = d.Reason, Count = d.Count })],
            AcceptedLastMinute = c.AcceptedLastMinute,
            AcceptedLastHour = c.AcceptedLastHour,
            RefusedLastMinute = ByCode(c.RefusedLastMinute),
            RefusedLastHour = ByCode(c.RefusedLastHour),
            BacklogEnvelopes = report.BacklogEnvelopes,
            BacklogOldestAgeMs = report.BacklogOldestAgeMs,
            DeliveriesLast5Minutes = c.Latency.Count,
            DeliveryLatencyP50Us = c.Latency.P50Us,
            DeliveryLatencyP90Us = c.Latency.P90Us,
            DeliveryLatencyP99Us = c.Latency.P99Us,
            DeliveryLatencyMaxUs = c.Latency.MaxUs,
            MediaFailuresLastHour = ByCode(c.MediaFailuresLastHour),
            KeyBundleTimeoutsLastHour = c.KeyBundleTimeoutsLastHour,
            KeyBundleRequestsTimedOutLastHour = c.KeyBundleRequestsTimedOutLastHour,
            ExpiredLastHour = c.ExpiredLastHour,
        };
        view.Assessment = Assess(view);
        return view;
    }

    private static List<CountView> ByCode(IReadOnlyList<(ErrorCode Code, long Count)> counts) =>
        [.. counts.OrderByDescending(c => c.Count).Select(c => new CountView { Name = ProtoNames.Of(c.Code), Count = c.Count })];

    // The first rule that matches names the side: the partner's (no session, not acknowledging, its requests refused)
    // or the relay's (nothing points at the partner). Counters stay the evidence; this is the sentence an admin reads.
    private static string Assess(HealthView h)
    {
        string oldest = HumanAge(h.BacklogOldestAgeMs);
        if (h.Suspended)
        {
            return $"suspended on this relay: {h.Partner} cannot connect and nothing goes to or comes from it (relayd ctl resume {h.Partner})";
        }

        if (h.SessionsNow == 0 && h.BacklogEnvelopes > 0)
        {
            return $"waiting on {h.Partner}: no session, {h.BacklogEnvelopes} envelope(s) queued for it, the oldest for {oldest}";
        }

        if (h.BacklogEnvelopes > 0 && h.BacklogOldestAgeMs >= StuckBacklogAge.TotalMilliseconds)
        {
            return $"waiting on {h.Partner}: {h.SessionsNow} session(s) up but the oldest of {h.BacklogEnvelopes} queued envelope(s) has waited {oldest} for its delivery ack";
        }

        long refusedMinute = h.RefusedLastMinute.Sum(r => r.Count);
        if (refusedMinute > 0 && refusedMinute >= h.AcceptedLastMinute)
        {
            CountView top = h.RefusedLastMinute[0];
            return $"the relay refused {refusedMinute} of {h.Partner}'s envelopes in the last minute ({h.AcceptedLastMinute} accepted), most with {top.Name}: see refused; the codes say which rule";
        }

        if (h.KeyBundleTimeoutsLastHour > 0)
        {
            return $"{h.KeyBundleTimeoutsLastHour} key-bundle request(s) to {h.Partner} timed out in the last hour: {h.Partner} did not answer in time or had no session";
        }

        if (h.SessionsNow == 0)
        {
            return $"{h.Partner} has no session; nothing is waiting for it";
        }

        return "no problem seen in these windows";
    }

    internal static string HumanAge(long ms) => ms switch
    {
        < 1000 => string.Create(CultureInfo.InvariantCulture, $"{ms} ms"),
        < 120_000 => string.Create(CultureInfo.InvariantCulture, $"{ms / 1000.0:F1} s"),
        < 7_200_000 => string.Create(CultureInfo.InvariantCulture, $"{ms / 60_000} min"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ms / 3_600_000.0:F1} h"),
    };
}
