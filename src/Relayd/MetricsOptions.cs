using System.Net;

namespace Relayd;

/// <summary>The opt-in HTTP endpoint for Prometheus (<c>/metrics</c>) and probes (<c>/healthz</c>, <c>/readyz</c>): <c>[metrics]</c>.</summary>
public sealed class MetricsOptions
{
    /// <summary>
    /// Address and port of the endpoint, as "host:port", "[v6]:port" or "localhost:port" (like
    /// <see cref="RelayOptions.Listen"/>); "" = no endpoint. The port 9464 is the one OpenTelemetry's Prometheus
    /// exporter uses. A non-loopback address works, with a warning: the endpoint has no authentication (bind it to
    /// loopback and let the local Prometheus, or a proxy, scrape it). Defaults to "" (off).
    /// </summary>
    public string Listen { get; set; } = "";

    /// <summary>Whether the endpoint is configured.</summary>
    public bool Enabled => Listen.Length > 0;

    /// <summary>The problems of <see cref="Listen"/>, as <see cref="RelayOptions.Check"/> reports them.</summary>
    internal void Check(List<OptionsProblem> problems)
    {
        if (!Enabled)
        {
            return;
        }

        try
        {
            ListenAddress.Parse(Listen);
        }
        catch (FormatException ex)
        {
            problems.Add(new OptionsProblem("metrics.listen", ex.Message));
        }
    }

    /// <summary>The warning for an endpoint reachable from other machines, or null (off, loopback, or not an address).</summary>
    public string? ExposureWarning()
    {
        if (!Enabled)
        {
            return null;
        }

        IPEndPoint endpoint;
        try
        {
            endpoint = ListenAddress.Parse(Listen);
        }
        catch (FormatException)
        {
            return null; // reported by Check
        }

        return IPAddress.IsLoopback(endpoint.Address) ? null
            : $"'{Listen}' is not a loopback address: /metrics, /healthz and /readyz have no authentication and are then reachable from other machines (prefer 127.0.0.1:9464 and a local scraper)";
    }
}
