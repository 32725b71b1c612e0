using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Text;

namespace Relayd.LoadGen.Peers;

/// <summary>
/// A peer's server binary running as our child, in a process group that dies with the load generator
/// (<see cref="ChildProcessGroup"/>), with the tail of its output kept for error messages.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private const int OutputTailChars = 16 * 1024;
    private const int SigTerm = 15;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    // Debian puts nats-server in /usr/sbin, which is not on every PATH.
    private static readonly string[] ExtraSearchDirectories = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin"];

    private readonly string _name;
    private readonly StringBuilder _output = new();
    private ChildProcessGroup? _group;

    private ServerProcess(string name) => _name = name;

    /// <summary>Process id of the server, still readable after it stopped.</summary>
    public int Pid { get; private set; }

    // The group's leader: it exits with the server's status when the server exits.
    private Process Leader => (_group ?? throw new InvalidOperationException($"{_name} was not started")).Process;

    /// <summary>The last lines the server wrote to stdout or stderr.</summary>
    public string OutputTail
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Full path of <paramref name="fileName"/>, or an error naming the Debian package that provides it.</summary>
    public static string FindBinary(string fileName, string debianPackage)
    {
        IEnumerable<string> directories = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(ExtraSearchDirectories);
        foreach (string directory in directories)
        {
            string candidate = Path.Combine(directory, fileName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException(
            $"{fileName} was not found on PATH or in /usr/sbin; install the Debian package: apt-get install -y {debianPackage}");
    }

    /// <summary>Starts <paramref name="binary"/> with <paramref name="arguments"/> in <paramref name="workingDirectory"/>, in a process group of its own.</summary>
    public static async Task<ServerProcess> StartAsync(string name, string binary, IEnumerable<string> arguments, string workingDirectory, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(binary) { WorkingDirectory = workingDirectory };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        var server = new ServerProcess(name);
        server._group = ChildProcessGroup.Start(startInfo, server.Keep);
        try
        {
            server.Pid = await server._group.ServerPidAsync(cancellationToken);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>
    /// Waits until the server answers <paramref name="probe"/> in a TLS session with our client certificate on
    /// 127.0.0.1:<paramref name="port"/>; throws with the server's output if it exits, refuses a certificate, or is not
    /// ready within 20 seconds.
    /// </summary>
    public async Task WaitUntilTlsReadyAsync(PeerTls tls, int port, TlsProbe probe, CancellationToken cancellationToken)
    {
        long started = Stopwatch.GetTimestamp();
        Exception? lastError = null;
        while (true)
        {
            if (Leader.HasExited)
            {
                // Let the output readers reach the end of the pipes, so the message shows why it exited.
                await Leader.WaitForExitAsync(cancellationToken);
                throw Failure($"exited with code {Leader.ExitCode} before accepting TLS on 127.0.0.1:{port}", lastError);
            }

            using (var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                attempt.CancelAfter(TimeSpan.FromSeconds(2));
                try
                {
                    await tls.ProbeAsync(port, probe, attempt.Token);
                    return;
                }
                catch (AuthenticationException e)
                {
                    throw Failure("refused the TLS session, or we refused its certificate", e);
                }
                catch (Exception e) when (!cancellationToken.IsCancellationRequested)
                {
                    lastError = e;
                }
            }

            if (Stopwatch.GetElapsedTime(started) > ReadyTimeout)
            {
                throw Failure($"did not accept a TLS connection on 127.0.0.1:{port} within {ReadyTimeout.TotalSeconds:0} s", lastError);
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Stops the server: SIGTERM so it shuts down cleanly, SIGKILL to its whole group if it is still running 5 seconds later.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_group is not { } group)
        {
            return;
        }

        try
        {
            if (!group.Process.HasExited && Pid != 0)
            {
                _ = Kill(Pid, SigTerm);
                using var grace = new CancellationTokenSource(StopGrace);
                try
                {
                    await group.Process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    group.KillGroup();
                    await group.Process.WaitForExitAsync();
                }
            }
        }
        finally
        {
            group.Dispose();
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private InvalidOperationException Failure(string what, Exception? lastError)
    {
        string cause = lastError is null ? "" : $" (last attempt: {lastError.GetType().Name}: {lastError.Message})";
        return new InvalidOperationException(
            string.Create(CultureInfo.InvariantCulture, $"{_name} {what}{cause}. Its output:\n{OutputTail}"), lastError);
    }

    private void Keep(string line)
    {
        lock (_output)
        {
            _output.AppendLine(line);
            if (_output.Length > OutputTailChars)
            {
                _output.Remove(0, _output.Length - OutputTailChars);
            }
        }
    }
}
