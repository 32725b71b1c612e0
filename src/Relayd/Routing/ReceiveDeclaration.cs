using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// What a partner's connection said in Hello it can take: the content kinds its users can receive and the largest
/// frame it reads. Immutable; a partner's effective declaration (<see cref="PartnerMailbox.Declared"/>) combines those
/// of its connections, and the relay refuses at admission what the recipient cannot take.
/// </summary>
internal sealed class ReceiveDeclaration
{
    /// <summary>Every kind, no frame limit of its own: what a connection that declared nothing takes.</summary>
    public static readonly ReceiveDeclaration Any = new(ulong.MaxValue, 0);

    private ReceiveDeclaration(ulong kinds, int maxFrameBytes)
    {
        Kinds = kinds;
        MaxFrameBytes = maxFrameBytes;
    }

    /// <summary>Bit k set: content kind k may be delivered. Kinds above 63 have no bit and are taken only when all are.</summary>
    public ulong Kinds { get; }

    /// <summary>Largest frame body the partner reads; 0 = it declared none (the relay's own limits apply).</summary>
    public int MaxFrameBytes { get; }

    public bool AcceptsAll => Kinds == ulong.MaxValue;

    /// <summary>The declaration of one Hello: <c>accepted_kinds</c> (empty = all) and <c>max_frame_bytes</c> (0 = none).</summary>
    public static ReceiveDeclaration FromHello(Hello hello)
    {
        if (hello.AcceptedKinds.Count == 0 && hello.MaxFrameBytes == 0)
        {
            return Any;
        }

        ulong kinds = hello.AcceptedKinds.Count == 0 ? ulong.MaxValue : ContentKinds.Mask(hello.AcceptedKinds);
        return new ReceiveDeclaration(kinds, (int)Math.Min(hello.MaxFrameBytes, int.MaxValue));
    }

    /// <summary>
    /// What all of <paramref name="declarations"/> can take: the kinds every one accepts, the smallest frame limit. A
    /// partner's connections share its deliveries, so an envelope must suit whichever of them it lands on.
    /// </summary>
    public static ReceiveDeclaration Combine(IEnumerable<ReceiveDeclaration> declarations)
    {
        ulong kinds = ulong.MaxValue;
        int maxFrame = 0;
        foreach (ReceiveDeclaration declaration in declarations)
        {
            kinds &= declaration.Kinds;
            if (declaration.MaxFrameBytes != 0 && (maxFrame == 0 || declaration.MaxFrameBytes < maxFrame))
            {
                maxFrame = declaration.MaxFrameBytes;
            }
        }

        return kinds == ulong.MaxValue && maxFrame == 0 ? Any : new ReceiveDeclaration(kinds, maxFrame);
    }

    public bool Accepts(int contentKind) => AcceptsAll || ContentKinds.InMask(Kinds, contentKind);
}

/// <summary>Content kinds as bit masks, and their proto names for people.</summary>
internal static class ContentKinds
{
    /// <summary>Bit k for each kind k in 0..63 (others have no bit).</summary>
    public static ulong Mask(IEnumerable<ContentKind> kinds)
    {
        ulong mask = 0;
        foreach (ContentKind kind in kinds)
        {
            if ((int)kind is >= 0 and < 64)
            {
                mask |= 1UL << (int)kind;
            }
        }

        return mask;
    }

    public static bool InMask(ulong mask, int contentKind) => contentKind is >= 0 and < 64 && (mask & (1UL << contentKind)) != 0;

    /// <summary>The proto name, e.g. <c>CONTENT_KIND_IMAGE</c>; "content kind N" for a value this build does not know.</summary>
    public static string Name(int contentKind) => Relayd.Protocol.ProtoNames.OfContentKind(contentKind);

    /// <summary>The kinds in <paramref name="mask"/> by proto name, e.g. <c>[CONTENT_KIND_TEXT]</c>.</summary>
    public static string Names(ulong mask)
    {
        var names = new List<string>();
        for (int kind = 0; kind < 64; kind++)
        {
            if (InMask(mask, kind))
            {
                names.Add(Name(kind));
            }
        }

        return "[" + string.Join(", ", names) + "]";
    }
}
