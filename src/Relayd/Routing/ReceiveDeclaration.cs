using Relayd.Protocol.V1;

namespace Relayd.Routing;

/// <summary>
/// What a partner's connection said in Hello it can take: the content kinds its users can receive, the largest
/// frame it reads, and whether it shows read receipts and typing notices. Immutable; a partner's effective declaration (<see cref="PartnerMailbox.Declared"/>) combines those
/// of its connections, and the relay refuses at admission what the recipient cannot take.
/// </summary>
internal sealed class ReceiveDeclaration
{
    /// <summary>
    /// Every kind, no frame limit of its own, neither read receipts nor typing: what a connection that declared nothing
    /// takes (and what a partner with no connection is taken to).
    /// </summary>
    public static readonly ReceiveDeclaration Any = new(ulong.MaxValue, 0, false, false);

    private ReceiveDeclaration(ulong kinds, int maxFrameBytes, bool readReceipts, bool typing)
    {
        Kinds = kinds;
        MaxFrameBytes = maxFrameBytes;
        AcceptsReadReceipts = readReceipts;
        AcceptsTyping = typing;
    }

    /// <summary>Bit k set: content kind k may be delivered. Kinds above 63 have no bit and are taken only when all are.</summary>
    public ulong Kinds { get; }

    /// <summary>Largest frame body the partner reads; 0 = it declared none (the relay's own limits apply).</summary>
    public int MaxFrameBytes { get; }

    /// <summary>Hello.accepts_read_receipts: its users can be shown read receipts from other partners' users.</summary>
    public bool AcceptsReadReceipts { get; }

    /// <summary>Hello.accepts_typing: its users can be shown typing notices from other partners' users.</summary>
    public bool AcceptsTyping { get; }

    public bool AcceptsAll => Kinds == ulong.MaxValue;

    /// <summary>
    /// The declaration of one Hello: <c>accepted_kinds</c> (empty = all), <c>max_frame_bytes</c> (0 = none),
    /// <c>accepts_read_receipts</c> and <c>accepts_typing</c>.
    /// </summary>
    public static ReceiveDeclaration FromHello(Hello hello)
    {
        if (hello.AcceptedKinds.Count == 0 && hello.MaxFrameBytes == 0 && !hello.AcceptsReadReceipts && !hello.AcceptsTyping)
        {
            return Any;
        }

        ulong kinds = hello.AcceptedKinds.Count == 0 ? ulong.MaxValue : ContentKinds.Mask(hello.AcceptedKinds);
        return new ReceiveDeclaration(kinds, (int)Math.Min(hello.MaxFrameBytes, int.MaxValue), hello.AcceptsReadReceipts, hello.AcceptsTyping);
    }

    /// <summary>
    /// What all of <paramref name="declarations"/> can take: the kinds every one accepts, the smallest frame limit,
    /// read receipts and typing only when every one shows them. A partner's connections share its deliveries (and a
    /// typing notice goes to whichever is live), so what is sent must suit whichever of them it lands on. None: nothing
    /// declared (<see cref="Any"/>: no read receipts, no typing).
    /// </summary>
    public static ReceiveDeclaration Combine(IEnumerable<ReceiveDeclaration> declarations)
    {
        ulong kinds = ulong.MaxValue;
        int maxFrame = 0;
        bool readReceipts = true;
        bool typing = true;
        bool any = false;
        foreach (ReceiveDeclaration declaration in declarations)
        {
            any = true;
            kinds &= declaration.Kinds;
            readReceipts &= declaration.AcceptsReadReceipts;
            typing &= declaration.AcceptsTyping;
            if (declaration.MaxFrameBytes != 0 && (maxFrame == 0 || declaration.MaxFrameBytes < maxFrame))
            {
                maxFrame = declaration.MaxFrameBytes;
            }
        }

        readReceipts &= any;
        typing &= any;
        return kinds == ulong.MaxValue && maxFrame == 0 && !readReceipts && !typing ? Any : new ReceiveDeclaration(kinds, maxFrame, readReceipts, typing);
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
