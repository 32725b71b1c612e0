namespace Relayd;

/// <summary>One problem of a <see cref="RelayOptions"/> tree, named by its configuration key.</summary>
/// <param name="Key">The TOML key path, such as <c>relay.listen</c> or <c>partners[2].id</c> (0-based index), or a table (<c>partners</c>).</param>
/// <param name="Message">What is wrong, in the words the configuration loader uses.</param>
public sealed record OptionsProblem(string Key, string Message)
{
    /// <summary>Formats as <c>key: message</c>.</summary>
    public override string ToString() => $"{Key}: {Message}";
}

/// <summary>Thrown by <see cref="RelayOptions.Validate"/>; the message lists every problem.</summary>
public sealed class RelayOptionsException : Exception
{
    /// <summary>Creates the exception for a non-empty list of problems.</summary>
    public RelayOptionsException(IReadOnlyList<OptionsProblem> problems)
        : base($"invalid options ({problems.Count} problem(s)):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", problems))
    {
        Problems = problems;
    }

    /// <summary>Every problem found, in the order of the tree (relay, tls, partners).</summary>
    public IReadOnlyList<OptionsProblem> Problems { get; }
}
