namespace Relayd.Support.Evidence;

/// <summary>The [evidence] key cannot be used (missing, readable by others, not Ed25519): the relay refuses to start, naming the path and why.</summary>
internal sealed class EvidenceKeyException(string path, string problem) : Exception($"[evidence] key {path}: {problem}")
{
    public string Path { get; } = path;

    public string Problem { get; } = problem;
}
