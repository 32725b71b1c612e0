using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>
/// The content kinds the relay carries at all (<c>[interop] kinds</c>): a kind outside it is refused for every
/// partner, before the recipient's own kinds are asked. Immutable; checking a kind is one mask test.
/// </summary>
internal sealed class RelayKindPolicy
{
    /// <summary>Every kind: what pipelines built without a policy (tests of other rules) use.</summary>
    public static readonly RelayKindPolicy Everything = new(ulong.MaxValue, "every kind");

    private readonly ulong _mask;
    private readonly string _allowed;

    private RelayKindPolicy(ulong mask, string allowed)
    {
        _mask = mask;
        _allowed = allowed;
    }

    /// <summary>The policy that carries exactly <paramref name="kinds"/>.</summary>
    public static RelayKindPolicy Of(IEnumerable<ContentKind> kinds)
    {
        ulong mask = 0;
        var names = new List<string>();
        foreach (ContentKind kind in kinds)
        {
            if ((int)kind is > 0 and < 64 && (mask & (1UL << (int)kind)) == 0)
            {
                mask |= 1UL << (int)kind;
                names.Add(ConfigName((int)kind));
            }
        }

        return new RelayKindPolicy(mask, string.Join(", ", names));
    }

    /// <summary>Whether the relay carries <paramref name="contentKind"/>. Allocates nothing.</summary>
    public bool Allows(int contentKind) => _mask == ulong.MaxValue || (contentKind is >= 0 and < 64 && (_mask & (1UL << contentKind)) != 0);

    /// <summary>The detail of CONTENT_KIND_UNSUPPORTED for a kind the policy forbids: names the kind and the policy.</summary>
    public string Refusal(int contentKind) =>
        $"the relay does not carry {ConfigName(contentKind)} (its [interop] kinds allow {_allowed})";

    /// <summary>
    /// A kind as the configuration spells it (<c>sticker</c> for CONTENT_KIND_STICKER), derived from the proto name so
    /// that a kind added to the .proto is named without touching this; "unspecified" for 0, "content kind N" when unknown.
    /// </summary>
    public static string ConfigName(int contentKind)
    {
        const string Prefix = "CONTENT_KIND_";
        string name = ProtoNames.OfContentKind(contentKind);
        return name.StartsWith(Prefix, StringComparison.Ordinal) ? name[Prefix.Length..].ToLowerInvariant() : name;
    }
}
