namespace Relayd.Hosting.Reload;

/// <summary>Where the running options came from: the file a reload reads again, and its values as they were read.</summary>
/// <param name="Path">The configuration file (absolute); null when the options were built in code (<c>relayd dev</c>).</param>
/// <param name="Values">Its keys and values as loaded (see <see cref="LoadedConfig.Values"/>).</param>
internal sealed record ConfigSource(string? Path, IReadOnlyDictionary<string, string> Values)
{
    /// <summary>Options not from a file: nothing to reload.</summary>
    public static ConfigSource None { get; } = new(null, new Dictionary<string, string>());
}
