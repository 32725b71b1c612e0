using System.Globalization;
using System.Text;
using Relayd.Hosting.Control;

namespace Relayd.Hosting.Commands;

/// <summary>The readable form of <c>relayd ctl health PARTNER</c>: one row per question an admin asks, then the assessment.</summary>
internal static class HealthTable
{
    public static void Render(StringBuilder text, HealthView h)
    {
        ControlTables.Rows(text, [
            ["partner", h.Partner + (h.Suspended ? " (SUSPENDED)" : "")],
            ["at", h.At.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) + " (windows end here)"],
            ["sessions", $"{N(h.SessionsNow)} now; {N(h.ConnectsLastHour)} connect(s) in the last hour"],
            ["disconnects", Counts(h.DisconnectsLastHour) + " (last hour)"],
            ["accepted", $"{N(h.AcceptedLastMinute)} last minute, {N(h.AcceptedLastHour)} last hour"],
            ["refused", $"{Counts(h.RefusedLastMinute)} last minute; {Counts(h.RefusedLastHour)} last hour"],
            ["backlog", h.BacklogEnvelopes == 0 ? "none" : $"{N(h.BacklogEnvelopes)} envelope(s), the oldest waiting {ControlRequestHandler.HumanAge(h.BacklogOldestAgeMs)}"],
            ["delivery latency", h.DeliveriesLast5Minutes == 0 ? "no delivery acks in the last 5 minutes"
                : $"p50 {Ms(h.DeliveryLatencyP50Us)}, p90 {Ms(h.DeliveryLatencyP90Us)}, p99 {Ms(h.DeliveryLatencyP99Us)}, max {Ms(h.DeliveryLatencyMaxUs)} over {N(h.DeliveriesLast5Minutes)} delivery ack(s), last 5 minutes (accepted -> ack)"],
            ["media failures", Counts(h.MediaFailuresLastHour) + " (last hour)"],
            ["key bundles", $"{N(h.KeyBundleTimeoutsLastHour)} request(s) to it timed out; {N(h.KeyBundleRequestsTimedOutLastHour)} of its own timed out (last hour)"],
            ["expired", $"{N(h.ExpiredLastHour)} envelope(s) to it expired undelivered (last hour)"],
            ["assessment", h.Assessment],
        ]);
    }

    private static string Counts(List<CountView> counts) =>
        counts.Count == 0 ? "none" : string.Join(", ", counts.Select(c => $"{c.Name} {N(c.Count)}"));

    private static string N(long value) => ControlTables.Number(value);

    private static string Ms(long us) => string.Create(CultureInfo.InvariantCulture, $"{us / 1000.0:F1} ms");
}
