using System.Text.RegularExpressions;

namespace Relayd.Tests.Infrastructure;

/// <summary>What every refusal of a relayd command must look like to an operator: short lines, no .NET internals.</summary>
internal static partial class CliAssert
{
    /// <summary>No stack trace ("   at " lines), no exception type names and no generic-host failure dump.</summary>
    public static void NoStackTrace(string output)
    {
        Assert.False(output.Contains("   at ", StringComparison.Ordinal), "a stack trace was printed:\n" + output);
        Assert.False(ExceptionTypeName().IsMatch(output), "an exception type name was printed:\n" + output);
        Assert.False(output.Contains("Hosting failed", StringComparison.Ordinal), "the generic host's failure dump was printed:\n" + output);
    }

    /// <summary>
    /// The command printed exactly <paramref name="lines"/> non-empty lines on standard error, with no stack trace, and
    /// returns them.
    /// </summary>
    public static string[] Refusal(ExternalProcess.Result result, int expectedExitCode, int lines = 1)
    {
        string all = result.StandardOutput + result.StandardError;
        Assert.True(result.ExitCode == expectedExitCode, $"exit code {result.ExitCode}, expected {expectedExitCode}; output:\n{all}");
        NoStackTrace(all);
        string[] errors = result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(errors.Length == lines, $"expected {lines} line(s) on standard error, got {errors.Length}:\n{result.StandardError}");
        return errors;
    }

    [GeneratedRegex(@"\b[A-Z]\w*Exception\b")]
    private static partial Regex ExceptionTypeName();
}
