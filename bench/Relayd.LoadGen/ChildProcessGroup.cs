using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Relayd.LoadGen;

/// <summary>
/// Starts a server the load generator measures (relayd, nats-server, redis-server) in a process group of its own,
/// tied to the load generator's life: however the load generator ends, Ctrl+C, SIGTERM, an exception or SIGKILL, the
/// group is killed, so no server is left running and holding its port, CPU and disk.
/// </summary>
/// <remarks>
/// How: <c>setsid sh -c SCRIPT</c> makes a new session and process group led by a small shell, which starts the
/// server in the background, prints its pid, and keeps a watcher that reads the shell's stdin, a pipe only this
/// process holds open. The kernel closes that pipe when this process ends by any means, SIGKILL included; the
/// watcher then sees end of file and kills the whole group. No signal handler can do that, and PR_SET_PDEATHSIG
/// fires when the forking thread exits, not the process, so a thread-pool thread's retirement would kill the server.
/// The shell waits for the server and exits with its status, so <see cref="Process.HasExited"/> and
/// <see cref="Process.ExitCode"/> still describe the server. Hand-written: no package starts process groups.
/// </remarks>
internal sealed class ChildProcessGroup : IDisposable
{
    private const string PidPrefix = "relayd-loadgen-child-pid ";
    private const int SigKill = 9;

    // $0 is the server binary, "$@" its arguments. fd 3 keeps the stdin pipe for the watcher (an asynchronous list's
    // own stdin is /dev/null in a non-interactive shell); the server does not get it. The watcher holds neither stdout
    // nor stderr, and ends when the server does: once the server has exited, the output pipes reach end of file, so
    // WaitForExitAsync (which waits for them) returns instead of waiting on a watcher that outlives the server.
    private const string Script = """
        exec 3<&0
        "$0" "$@" 3<&- </dev/null &
        child=$!
        echo "relayd-loadgen-child-pid $child"
        (read -r _ <&3; kill -KILL 0) </dev/null >/dev/null 2>&1 &
        watcher=$!
        exec 3<&-
        wait "$child"
        status=$?
        kill "$watcher" 2>/dev/null
        exit "$status"
        """;

    private readonly TaskCompletionSource<int> _pid = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcessGroup(Process process) => Process = process;

    /// <summary>The group leader, the shell: its stdout and stderr are the server's, its exit code the server's.</summary>
    public Process Process { get; }

    /// <summary>The process group id (the shell's pid): <c>kill -- -GROUP</c> reaches every process of it.</summary>
    public int GroupId => Process.Id;

    /// <summary>
    /// Starts <paramref name="start"/>'s program in its own group. Output lines go to <paramref name="onOutput"/>
    /// (stdout and stderr both, read continuously so a chatty server never blocks on a full pipe).
    /// </summary>
    public static ChildProcessGroup Start(ProcessStartInfo start, Action<string> onOutput)
    {
        var wrapped = new ProcessStartInfo("setsid")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = start.WorkingDirectory,
        };
        foreach (string argument in (string[])["sh", "-c", Script, start.FileName, .. start.ArgumentList])
        {
            wrapped.ArgumentList.Add(argument);
        }

        foreach ((string key, string? value) in start.Environment)
        {
            wrapped.Environment[key] = value;
        }

        ClientSocketCompletions.KeepFromChild(wrapped); // the relay runs as its admin would run it

        var group = new ChildProcessGroup(new Process { StartInfo = wrapped });
        group.Process.OutputDataReceived += (_, line) => group.OnLine(line.Data, onOutput);
        group.Process.ErrorDataReceived += (_, line) => group.OnLine(line.Data, onOutput);
        group.Process.Start();
        group.Process.BeginOutputReadLine();
        group.Process.BeginErrorReadLine();
        return group;
    }

    /// <summary>The server's own pid (for CPU and RSS sampling and signals), once the shell has started it.</summary>
    public Task<int> ServerPidAsync(CancellationToken cancellationToken) =>
        _pid.Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);

    /// <summary>SIGKILL to every process of the group.</summary>
    public void KillGroup() => _ = Kill(-GroupId, SigKill);

    /// <summary>Kills the group (if anything of it still runs) and releases the process object.</summary>
    public void Dispose()
    {
        KillGroup();
        Process.Dispose();
    }

    private void OnLine(string? line, Action<string> onOutput)
    {
        if (line is null)
        {
            return;
        }

        if (!_pid.Task.IsCompleted && line.StartsWith(PidPrefix, StringComparison.Ordinal)
            && int.TryParse(line.AsSpan(PidPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
        {
            _pid.TrySetResult(pid);
            return;
        }

        onOutput(line);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
