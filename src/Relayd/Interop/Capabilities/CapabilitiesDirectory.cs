using Relayd.Admission;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Interop.Capabilities;

/// <summary>
/// Answers CapabilitiesRequest: what the relay would deliver to a partner now, so a sending app can grey out what the
/// other side cannot show instead of failing after the user pressed send.
/// </summary>
internal sealed class CapabilitiesDirectory(PartnerDirectory partners, RelayKindPolicy relayKinds)
{
    // Every kind this build knows, UNSPECIFIED aside (what a partner "takes all" of is listed explicitly).
    private static readonly ContentKind[] KnownKinds = [.. Enum.GetValues<ContentKind>().Where(k => k != ContentKind.Unspecified)];

    /// <summary>
    /// The capabilities of <paramref name="request"/>'s partner: the kinds the relay's policy, the partner's
    /// configuration and its connections' Hello all allow; its media limit; whether its connections show read receipts
    /// and typing (as last declared: a partner offline now keeps what its connections said). Null for a partner the
    /// relay does not know.
    /// </summary>
    public Protocol.V1.Capabilities? Answer(CapabilitiesRequest request)
    {
        PartnerInfo? partner = partners.Find(request.Partner);
        if (partner is null)
        {
            return null;
        }

        ReceiveDeclaration declared = partner.Mailbox.Declared;
        var answer = new Protocol.V1.Capabilities
        {
            RequestId = request.RequestId,
            Partner = partner.Id,
            MaxMediaBytes = (ulong)partner.Settings.MaxMediaBytes,
            ReadReceipts = declared.AcceptsReadReceipts,
            Typing = declared.AcceptsTyping,
            Groups = false,
            DisappearingMessages = false,
        };
        foreach (ContentKind kind in KnownKinds)
        {
            if (relayKinds.Allows((int)kind) && partner.Accepts((int)kind))
            {
                answer.Kinds.Add(kind);
            }
        }

        return answer;
    }
}
