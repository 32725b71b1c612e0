using System.Net;
using Microsoft.Extensions.Logging;

namespace Relayd.Diagnostics;

/// <summary>The metrics endpoint's log events (85x).</summary>
internal static partial class RelayLog
{
    [LoggerMessage(EventId = EventIds.MetricsListening, Level = LogLevel.Information, Message = "Metrics endpoint on http://{Endpoint}: /metrics, /healthz, /readyz")]
    public static partial void MetricsListening(ILogger logger, IPEndPoint endpoint);

    [LoggerMessage(EventId = EventIds.MetricsRequestRefused, Level = LogLevel.Debug, Message = "Metrics endpoint: request from {Remote} answered {Status} {Reason}")]
    public static partial void MetricsRequestRefused(ILogger logger, EndPoint? remote, int status, string reason);

    [LoggerMessage(EventId = EventIds.MetricsRequestTimedOut, Level = LogLevel.Debug, Message = "Metrics endpoint: connection from {Remote} closed: no complete request and answer within {Seconds} s")]
    public static partial void MetricsRequestTimedOut(ILogger logger, EndPoint? remote, double seconds);

    [LoggerMessage(EventId = EventIds.MetricsTooManyConnections, Level = LogLevel.Debug, Message = "Metrics endpoint: connection from {Remote} closed unanswered: {Max} connections are served at once")]
    public static partial void MetricsTooManyConnections(ILogger logger, EndPoint? remote, int max);

    [LoggerMessage(EventId = EventIds.MetricsAcceptFailed, Level = LogLevel.Warning, Message = "Metrics endpoint: accepting a connection failed; the endpoint stops")]
    public static partial void MetricsAcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = EventIds.MetricsStopped, Level = LogLevel.Debug, Message = "Metrics endpoint on {Endpoint} stopped")]
    public static partial void MetricsStopped(ILogger logger, IPEndPoint endpoint);
}
