using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Interop.Consent;

/// <summary>
/// What makes a ConsentUpdate acceptable before it is logged: at least one change and at most the configured number,
/// each with a user of 1..<see cref="UserHash.MaxUserBytes"/> bytes, a GRANT or REVOKE action, and a scope that is
/// empty or an approved partner. The first problem found is the answer, naming the change.
/// </summary>
internal static class ConsentUpdateCheck
{
    public static bool TryAccept(ConsentUpdate update, int maxChanges, PartnerDirectory partners, PartnerOrdinals ordinals, out ErrorCode code, out string detail)
    {
        code = ErrorCode.InvalidRequest;
        if (update.Changes.Count == 0)
        {
            detail = "a ConsentUpdate needs at least one change";
            return false;
        }

        if (update.Changes.Count > maxChanges)
        {
            detail = $"a ConsentUpdate carries at most {maxChanges} changes ([interop] max_consent_changes), this one {update.Changes.Count}; split it";
            return false;
        }

        int newScopes = 0;
        for (int i = 0; i < update.Changes.Count; i++)
        {
            ConsentChange change = update.Changes[i];
            if (change.User.IsEmpty)
            {
                detail = $"change {i}: user is empty";
                return false;
            }

            if (change.User.Length > UserHash.MaxUserBytes)
            {
                detail = $"change {i}: user is {change.User.Length} bytes, more than the {UserHash.MaxUserBytes} a user id may have";
                return false;
            }

            if (change.Action is not (ConsentAction.ConsentGrant or ConsentAction.ConsentRevoke))
            {
                detail = $"change {i}: action must be CONSENT_GRANT or CONSENT_REVOKE, not {change.Action}";
                return false;
            }

            if (change.ScopePartner.Length != 0)
            {
                if (partners.Find(change.ScopePartner) is null)
                {
                    code = ErrorCode.UnknownRecipientPartner;
                    detail = $"change {i}: scope_partner '{change.ScopePartner}' is not an approved partner of this relay";
                    return false;
                }

                if (ordinals.Find(change.ScopePartner) < 0 && ordinals.Ids.Count + ++newScopes > ConsentScope.MaxOrdinals)
                {
                    detail = $"change {i}: consent scopes can name at most {ConsentScope.MaxOrdinals} distinct partners; grant to all partners instead";
                    return false;
                }
            }
        }

        code = ErrorCode.Unspecified;
        detail = "";
        return true;
    }
}
