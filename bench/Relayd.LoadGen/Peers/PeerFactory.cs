namespace Relayd.LoadGen.Peers;

/// <summary>Turns peer names given on the command line into the targets that run them.</summary>
public static class PeerFactory
{
    /// <summary>The names <see cref="Create"/> accepts.</summary>
    public static IReadOnlyList<string> KnownNames { get; } = ["nats", "redis"];

    /// <summary>
    /// Creates the targets for <paramref name="names"/> in order: "nats" gives core NATS and JetStream, "redis" gives
    /// Redis Streams with appendfsync always and everysec. Names are case-insensitive; a repeated name counts once.
    /// Nothing is started until a target's <see cref="ILoadTarget.StartAsync"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A name is not one of <see cref="KnownNames"/>.</exception>
    public static IReadOnlyList<ILoadTarget> Create(IEnumerable<string> names, PeerPki pki)
    {
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(pki);
        // Check every name before building anything, so a typo fails before any server would run.
        var distinct = names.Select(name => name.Trim().ToLowerInvariant()).Distinct().ToList();
        foreach (string name in distinct)
        {
            if (!KnownNames.Contains(name))
            {
                throw new ArgumentException($"Unknown peer '{name}'; known peers: {string.Join(", ", KnownNames)}.", nameof(names));
            }
        }

        var targets = new List<ILoadTarget>();
        foreach (string name in distinct)
        {
            if (name == "nats")
            {
                targets.Add(new NatsCoreTarget(pki));
                targets.Add(new NatsJetStreamTarget(pki));
            }
            else
            {
                targets.Add(new RedisStreamsTarget(pki, fsyncAlways: true));
                targets.Add(new RedisStreamsTarget(pki, fsyncAlways: false));
            }
        }

        return targets;
    }
}
