using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Relayd;

/// <summary>The listen address of <see cref="RelayOptions.Listen"/>: "host:port" with an IPv4 host, "[v6]:port", or "localhost:port".</summary>
internal static class ListenAddress
{
    /// <summary>Parses <paramref name="value"/>; "localhost" is the IPv4 loopback.</summary>
    /// <exception cref="FormatException"><paramref name="value"/> is not such an address.</exception>
    public static IPEndPoint Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        int colon = value.LastIndexOf(':');
        string host = colon > 0 ? value[..colon] : "";
        string port = colon > 0 ? value[(colon + 1)..] : "";
        bool bracketed = host.Length > 2 && host[0] == '[' && host[^1] == ']';
        IPAddress? address = host.Equals("localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
            : bracketed && IPAddress.TryParse(host[1..^1], out IPAddress? v6) && v6.AddressFamily == AddressFamily.InterNetworkV6 ? v6
            // Require a dotted quad: IPAddress.TryParse also takes "1" or "127.1", which are more likely typos.
            : host.Count(c => c == '.') == 3 && IPAddress.TryParse(host, out IPAddress? v4) && v4.AddressFamily == AddressFamily.InterNetwork ? v4
            : null;
        if (address is null || !ushort.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out ushort portNumber))
        {
            throw new FormatException($"'{value}' is not an address to listen on (expected \"ipv4:port\", \"[ipv6]:port\" or \"localhost:port\")");
        }

        return new IPEndPoint(address, portNumber);
    }
}
