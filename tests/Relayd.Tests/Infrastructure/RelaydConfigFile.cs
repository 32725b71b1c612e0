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

    public static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
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
