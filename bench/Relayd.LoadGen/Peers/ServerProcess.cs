using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Text;

namespace Relayd.LoadGen.Peers;

/// <summary>A peer's server binary running as our child process, with the tail of its output kept for error messages.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private const int OutputTailChars = 16 * 1024;
    private const int SigTerm = 15;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    // Debian puts nats-server in /usr/sbin, which is not on every PATH.
    private static readonly string[] ExtraSearchDirectories = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin"];

    private readonly string _name;
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ServerProcess(string name, Process process)
    {
        _name = name;
        _process = process;
    }

    /// <summary>Process id of the server, still readable after it stopped.</summary>
    public int Pid { get; private set; }

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

    /// <summary>Starts <paramref name="binary"/> with <paramref name="arguments"/> in <paramref name="workingDirectory"/>.</summary>
    public static ServerProcess Start(string name, string binary, IEnumerable<string> arguments, string workingDirectory)
    {
        var startInfo = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = startInfo };
        var server = new ServerProcess(name, process);
        // Both pipes must be drained continuously, or a chatty server blocks on a full pipe mid-benchmark.
        process.OutputDataReceived += (_, line) => server.Keep(line.Data);
        process.ErrorDataReceived += (_, line) => server.Keep(line.Data);
        process.Start();
        server.Pid = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
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
            if (_process.HasExited)
            {
                // Let the output readers reach the end of the pipes, so the message shows why it exited.
                await _process.WaitForExitAsync(cancellationToken);
                throw Failure($"exited with code {_process.ExitCode} before accepting TLS on 127.0.0.1:{port}", lastError);
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

    /// <summary>Stops the server: SIGTERM so it shuts down cleanly, SIGKILL if it is still running 5 seconds later.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _ = Kill(Pid, SigTerm);
                using var grace = new CancellationTokenSource(StopGrace);
                try
                {
                    await _process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync();
                }
            }
        }
        finally
        {
            _process.Dispose();
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

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

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
