using System.Net;
using System.Net.Sockets;

namespace Relayd.LoadGen.Peers;

/// <summary>Free TCP ports on 127.0.0.1 for the peer servers.</summary>
internal static class LoopbackPort
{
    /// <summary>
    /// Asks the kernel for a port nobody holds. Another process could take it before the server binds it; for a
    /// benchmark on one machine that race is rare, and the server then fails to start with a clear error.
    /// </summary>
    public static int PickFree()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
