using System.Collections.Concurrent;
using System.Diagnostics;

namespace Relayd.Tests.Infrastructure;

/// <summary>relayd started as a real process (<c>relayd run --config FILE</c>), for signals and crashes.</summary>
internal sealed class RelaydProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private RelaydProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        process.OutputDataReceived += (_, e) => Record(e.Data);
        process.ErrorDataReceived += (_, e) => Record(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Port { get; }

    public int Pid => _process.Id;

    public string Output => string.Join('\n', _output);

    /// <summary>Writes a config approving alpha, beta and gamma on a free loopback port and starts relayd on it.</summary>
    public static async Task<RelaydProcess> StartAsync(TestPki pki, string extraToml = "")
    {
        int port = RelaydConfigFile.FreePort();
        if (!extraToml.Contains("[wal]", StringComparison.Ordinal))
        {
            // Each relay its own write-ahead log, unless the test brings one (e.g. to restart on it).
            extraToml += $"\n[wal]\ndir = \"{Path.Combine(pki.Directory, $"wal-{port}")}\"\nreserve_bytes = 16777216\n";
        }

        string config = RelaydConfigFile.Write(pki, "relayd-process-test", port, extraToml);
        var relay = new RelaydProcess(Process.Start(RelaydConfigFile.RunCommand(config))!, port);
        await relay.WaitForOutputAsync("listening on");
        return relay;
    }

    public async Task WaitForOutputAsync(string text, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!_output.Any(l => l.Contains(text, StringComparison.Ordinal)))
        {
            if (DateTime.UtcNow > deadline || _process.HasExited)
            {
                throw new Xunit.Sdk.XunitException($"relayd did not print '{text}'; output:\n{Output}");
            }

            await Task.Delay(25);
        }
    }

    /// <summary>Sends SIGTERM, as systemd does on stop (kill(2) directly: minimal CI images may lack kill(1)).</summary>
    public Task TerminateAsync()
    {
        const int SigTerm = 15;
        RelaydConfigFile.Signal(_process, SigTerm);
        return Task.CompletedTask;
    }

    public async Task<int> WaitForExitAsync(int seconds)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Record(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        try
        {
            TestContext.Current.TestOutputHelper?.WriteLine("[relayd] " + line);
        }
        catch (InvalidOperationException)
        {
            // Output after the test ended.
        }
    }
}
