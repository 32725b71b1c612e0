using System.Diagnostics;

namespace Relayd.Tests.Infrastructure;

/// <summary>Runs outside programs (protoc, openssl, relayd itself) as real processes.</summary>
internal static class ExternalProcess
{
    public sealed record Result(int ExitCode, string StandardOutput, string StandardError, byte[] RawOutput);

    public static async Task<Result> RunAsync(string fileName, IEnumerable<string> arguments, byte[]? standardInput = null, int timeoutSeconds = 60)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var stdout = new MemoryStream();
        Task copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        if (standardInput is not null)
        {
            await process.StandardInput.BaseStream.WriteAsync(standardInput);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish within {timeoutSeconds} s");
        }

        // A process it started and left running may hold the output pipes open after it exited: a failure naming it,
        // not a wait without end.
        try
        {
            await Task.WhenAll(copy, stderr).WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} exited with {process.ExitCode}, but its output stayed open 30 s later (a process it started still holds it)");
        }

        byte[] raw = stdout.ToArray();
        return new Result(process.ExitCode, System.Text.Encoding.UTF8.GetString(raw), await stderr, raw);
    }

    /// <summary>The repository root (where Relayd.sln is), found from the test binaries.</summary>
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Relayd.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("Relayd.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>relayd as built next to the tests, started through the dotnet host.</summary>
    public static Task<Result> RunRelaydAsync(params string[] arguments) =>
        RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "relayd.dll"), .. arguments], timeoutSeconds: 120);
}
