using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// What every test that starts the real daemon needs: a free loopback port, a config file for it (the test PKI,
/// partners alpha, beta and gamma, plus the test's own tables) and signals to the process.
/// </summary>
internal static class RelaydConfigFile
{
    /// <summary>Writes <c>{name}-{port}.toml</c> in the PKI directory and returns its path.</summary>
    public static string Write(TestPki pki, string name, int port, string tables)
    {
        string path = Path.Combine(pki.Directory, $"{name}-{port}.toml");
        File.WriteAllText(path, $"""
            [relay]
            listen = "127.0.0.1:{port}"
            relay_id = "{name}"

            [tls]
            certificate = "{pki.ServerCertPath}"
            key = "{pki.ServerKeyPath}"
            partner_ca = "{pki.CaPath}"

            {tables}

            [[partners]]
            id = "alpha"

            [[partners]]
            id = "beta"

            [[partners]]
            id = "gamma"
            """);
        return path;
    }

    /// <summary><c>dotnet relayd.dll run --config FILE</c>, with its output redirected (not started).</summary>
    public static ProcessStartInfo RunCommand(string configPath)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "relayd.dll"));
        start.ArgumentList.Add("run");
        start.ArgumentList.Add("--config");
        start.ArgumentList.Add(configPath);
        return start;
    }

    private static int _nextPort = Random.Shared.Next(0, 1 << 20);

    /// <summary>
    /// A port nothing listens on, from below the kernel's ephemeral range (ip_local_port_range). A port from inside it
    /// can be taken by any outgoing connection of the test process while the relay that had it restarts, and the
    /// restart's bind then fails with EADDRINUSE (CI saw it in ListenPortTests). Ports are handed out in turn, so two
    /// relays of one test run do not get the same one.
    /// </summary>
    public static int FreePort()
    {
        const int Lowest = 20_000;
        int highest = EphemeralLow() - 1;
        if (highest - Lowest < 1000)
        {
            using var any = new TcpListener(IPAddress.Loopback, 0); // an unusual range: the kernel's choice, as before
            any.Start();
            return ((IPEndPoint)any.LocalEndpoint).Port;
        }

        for (int attempt = 0; attempt < 1000; attempt++)
        {
            int port = Lowest + (int)((uint)Interlocked.Increment(ref _nextPort) % (uint)(highest - Lowest + 1));
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
                return port;
            }
            catch (SocketException)
            {
                // in use: the next one
            }
        }

        throw new InvalidOperationException($"no free port in {Lowest}-{highest} after 1000 tries");
    }

    private static int EphemeralLow()
    {
        try
        {
            string range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range");
            return int.Parse(range.Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return 32_768; // Linux's default
        }
    }

    /// <summary>kill(2) directly (minimal CI images may lack kill(1)); nothing to do when the process already exited.</summary>
    public static void Signal(Process process, int signal)
    {
        if (!process.HasExited && NativeMethods.kill(process.Id, signal) != 0 && !process.HasExited)
        {
            throw new InvalidOperationException($"kill({process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }
}
