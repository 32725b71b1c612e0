namespace Relayd;

/// <summary>
/// The interop rules between providers (docs/protocol.md, "Interop"): opt-in, the relay's content-kind policy, key
/// bundles, rate limits, abuse reports. The <c>[interop]</c> table of the config. Partial: each capability keeps its
/// keys in its own file (<c>InteropOptions.*.cs</c>).
/// </summary>
public sealed partial class InteropOptions
{
    /// <summary>
    /// Whether an envelope, a MediaOpen, a key-bundle request or a typing notice needs both users to have opted in
    /// (ConsentUpdate) to chats between the two partners; refused with NOT_OPTED_IN otherwise. Defaults to true: under
    /// the DMA nothing crosses without it.
    /// </summary>
    public bool RequireOptIn { get; set; } = true;
}
