using Relayd.Protocol.V1;

namespace Relayd;

public sealed partial class InteropOptions
{
    /// <summary>The launch profile: the kinds the first deployment carries between providers.</summary>
    public static IReadOnlyList<ContentKind> LaunchKinds { get; } = [ContentKind.Text, ContentKind.Image, ContentKind.Video, ContentKind.Voice, ContentKind.File];

    /// <summary>
    /// The content kinds the relay carries at all, for every partner (<c>[interop] kinds</c>): envelopes and MediaOpen of
    /// any other kind are refused with CONTENT_KIND_UNSUPPORTED naming the kind, and Capabilities leaves it out. A
    /// partner's <c>accepted_kinds</c> and its Hello narrow it further. At least one kind. Defaults to the launch profile
    /// (text, image, video, voice, file): sticker, status and reaction are not carried until an operator adds them.
    /// </summary>
    public IList<ContentKind> Kinds { get; } = [.. LaunchKinds];
}
