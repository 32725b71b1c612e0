using System.Net.Sockets;

namespace Relayd.Diagnostics.Prometheus;

/// <summary>The metrics endpoint's address cannot be bound (in use, not local): the relay refuses to start.</summary>
internal sealed class MetricsListenException(string address, SocketException error)
    : Exception($"cannot listen for metrics on {address} (metrics.listen): {(error.SocketErrorCode == SocketError.AddressAlreadyInUse ? "address already in use" : error.Message)}", error);
