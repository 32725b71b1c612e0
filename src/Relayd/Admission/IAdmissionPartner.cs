namespace Relayd.Admission;

/// <summary>
/// What the admission rules need to know of a partner (sender or recipient). Declared here, implemented by
/// <c>Routing.PartnerInfo</c>, so the rules depend on no folder that uses them: the envelope router (Routing) and the
/// media router both run the pipeline.
/// </summary>
internal interface IAdmissionPartner
{
    string Id { get; }

    /// <summary>A small number, unique to this partner object in this process: the index of <see cref="PartnerSlotTable{T}"/>.</summary>
    int Slot { get; }

    /// <summary>The id as it appears in a frame: what an envelope's sender_partner must equal.</summary>
    ReadOnlySpan<byte> IdUtf8 { get; }

    /// <summary>True once a configuration reload removed the partner from the approved ones.</summary>
    bool IsRetired { get; }

    /// <summary>Largest frame body the partner's connections read (their Hello.max_frame_bytes); 0 = none declared.</summary>
    int DeclaredMaxFrameBytes { get; }

    /// <summary>Whether envelopes and media of <paramref name="contentKind"/> may go to this partner.</summary>
    bool Accepts(int contentKind);

    /// <summary>Why <see cref="Accepts"/> is false: the detail of CONTENT_KIND_UNSUPPORTED.</summary>
    string KindRefusal(int contentKind);

    /// <summary>Whether an operator suspended the partner (<see cref="SuspensionRule"/>).</summary>
    bool IsSuspended { get; }

    /// <summary>Its rate limits now (a reload swaps them): what the rate limiter applies to what it sends.</summary>
    RateLimitSettings RateLimits { get; }
}
