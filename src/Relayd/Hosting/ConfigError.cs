namespace Relayd.Hosting;

/// <summary>One problem in a configuration file: an error, or a warning (<see cref="IsWarning"/>) that does not stop the relay.</summary>
/// <param name="Source">The file (or source name) the problem is in.</param>
/// <param name="Line">1-based line of the offending key or table; 0 when the problem has no single line (e.g. a missing table).</param>
/// <param name="Key">Key path such as <c>limits.max_frame_bytes</c> or <c>partners[0].id</c> (indexes are 0-based); empty for TOML syntax errors.</param>
/// <param name="Message">What is wrong.</param>
public sealed record ConfigError(string Source, int Line, string Key, string Message)
{
    /// <summary>True for something that works but should change (e.g. a renamed key); the file is still valid.</summary>
    public bool IsWarning { get; init; }

    /// <summary>
    /// Formats as <c>source:line: key: message</c> (<c>key: warning: message</c> for a warning); the line and key parts
    /// are left out when absent.
    /// </summary>
    public override string ToString()
    {
        string where = Line > 0 ? $"{Source}:{Line}" : Source;
        string message = IsWarning ? "warning: " + Message : Message;
        return Key.Length > 0 ? $"{where}: {Key}: {message}" : $"{where}: {message}";
    }
}

/// <summary>Thrown by <see cref="RelayConfigLoader"/> when a configuration is invalid; the message lists every problem.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the exception for a non-empty list of errors (no warnings).</summary>
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(Describe(errors))
    {
        Errors = errors;
    }

    /// <summary>Every problem found, in file order.</summary>
    public IReadOnlyList<ConfigError> Errors { get; }

    private static string Describe(IReadOnlyList<ConfigError> errors) =>
        $"invalid configuration ({errors.Count} problem(s)):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors);
}
