using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// A partner's configured settings, resolved against the relay's defaults: immutable, so a reload swaps the whole
/// object and a reader sees either the old settings or the new ones, never a mix.
/// </summary>
internal sealed class PartnerSettings
{
    public PartnerSettings(PartnerOptions partner, RelayLimits limits, long defaultMaxMediaBytes, InteropOptions? interop = null)
    {
        RateLimits = RateLimitSettings.Resolve(interop ?? new InteropOptions(), partner);
        MaxConnections = partner.MaxConnections ?? limits.MaxConnectionsPerPartner;
        foreach (ContentKind kind in partner.AcceptedKinds)
        {
            AcceptedKindsMask |= 1UL << (int)kind;
        }

        AcceptedKinds = [.. partner.AcceptedKinds];
        MaxMediaBytes = partner.MaxMediaBytes ?? defaultMaxMediaBytes;
    }

    public int MaxConnections { get; }

    /// <summary>Bit k set: content kind k accepted. 0 = every kind.</summary>
    public ulong AcceptedKindsMask { get; }

    public IReadOnlyList<ContentKind> AcceptedKinds { get; }

    /// <summary>Largest blob this partner may send (its own limit, or the relay's <c>media.max_bytes</c>).</summary>
    public long MaxMediaBytes { get; }

    /// <summary>Its rate limits (its own overrides, else the [interop] ones).</summary>
    public RateLimitSettings RateLimits { get; }

    /// <summary>What differs from <paramref name="previous"/>, for the reload's log line ("max_connections 8 -> 16"); empty when nothing.</summary>
    public string DescribeChanges(PartnerSettings previous)
    {
        List<string> changes = [];
        if (MaxConnections != previous.MaxConnections)
        {
            changes.Add($"max_connections {previous.MaxConnections} -> {MaxConnections}");
        }

        if (AcceptedKindsMask != previous.AcceptedKindsMask)
        {
            changes.Add($"accepted_kinds {KindNames(previous.AcceptedKindsMask)} -> {KindNames(AcceptedKindsMask)}");
        }

        if (MaxMediaBytes != previous.MaxMediaBytes)
        {
            changes.Add($"max_media_bytes {previous.MaxMediaBytes} -> {MaxMediaBytes}");
        }

        if (RateLimits.DescribeChanges(previous.RateLimits) is { Length: > 0 } rateChanges)
        {
            changes.Add(rateChanges);
        }

        return string.Join(", ", changes);
    }

    private static string KindNames(ulong mask) => mask == 0 ? "all" : ContentKinds.Names(mask);
}
