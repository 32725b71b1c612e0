using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>ConsentUpdates as the opt-in tests send them.</summary>
internal static class ConsentUsers
{
    public static ConsentChange Grant(string user, string scope = "") =>
        new() { User = ByteString.CopyFromUtf8(user), Action = ConsentAction.ConsentGrant, ScopePartner = scope };

    public static ConsentChange Revoke(string user, string scope = "") =>
        new() { User = ByteString.CopyFromUtf8(user), Action = ConsentAction.ConsentRevoke, ScopePartner = scope };

    /// <summary>Grants every partner for <paramref name="users"/> and checks the ConsentAck counts them.</summary>
    public static async Task GrantAsync(RelayClient client, params string[] users)
    {
        ConsentAck ack = await client.UpdateConsentAsync(users.Select(u => Grant(u)), TestContext.Current.CancellationToken).Within();
        Assert.Equal((uint)users.Length, ack.Changes);
    }

    public static async Task RevokeAsync(RelayClient client, params string[] users)
    {
        ConsentAck ack = await client.UpdateConsentAsync(users.Select(u => Revoke(u)), TestContext.Current.CancellationToken).Within();
        Assert.Equal((uint)users.Length, ack.Changes);
    }

    /// <summary>The code of the relay's refusal of <paramref name="envelope"/>, or Unspecified when it was accepted.</summary>
    public static async Task<ErrorCode> OutcomeAsync(RelayClient client, Envelope envelope)
    {
        try
        {
            await client.SendAsync(envelope).Within();
            return ErrorCode.Unspecified;
        }
        catch (RelayException ex)
        {
            return ex.Code;
        }
    }
}
