using System.Collections.Concurrent;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Opt-in applies to the live routes too, end to end with real consent: a key-bundle request or a typing notice
/// crosses only between two users who both opted in (ConsentUpdate), else NOT_OPTED_IN and nothing is forwarded.
/// </summary>
public sealed class OptInLiveRouteTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public OptInLiveRouteTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_key_bundle_request_is_refused_with_NOT_OPTED_IN_until_both_users_opted_in_and_never_reaches_the_target_before()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Interop.RequireOptIn = true);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        CancellationToken cancel = TestContext.Current.CancellationToken;

        await ConsentUsers.GrantAsync(alpha, "alice"); // the target, bob, has not opted in
        RelayException refused = await Envelopes.RefusedAsync(() => alpha.RequestKeyBundleAsync("alice"u8.ToArray(), "beta", "bob"u8.ToArray(), cancel).Within());
        Assert.Equal(ErrorCode.NotOptedIn, refused.Code);
        Assert.Equal(0, relay.Server.KeyBundles!.PendingCount);

        await ConsentUsers.GrantAsync(beta, "bob");
        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync("alice"u8.ToArray(), "beta", "bob"u8.ToArray(), cancel);
        KeyBundleRequest forwarded = await FirstAsync(beta.ReadKeyBundleRequestsAsync(cancel));
        await beta.RespondKeyBundleAsync(forwarded, "bundle"u8.ToArray(), cancel);

        Assert.Equal("bob"u8.ToArray(), forwarded.TargetUser.ToByteArray()); // the first request never got here
        Assert.Equal(ErrorCode.Unspecified, (await answer.Within()).Code);
    }

    [Fact]
    public async Task A_typing_notice_is_refused_with_NOT_OPTED_IN_until_both_users_opted_in()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Interop.RequireOptIn = true);
        var errors = new ConcurrentQueue<RelayException>();
        await using RelayClient alpha = await relay.ConnectAsync("alpha", o => o with { OnRelayError = errors.Enqueue });
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { AcceptsTyping = true });
        CancellationToken cancel = TestContext.Current.CancellationToken;

        await ConsentUsers.GrantAsync(beta, "bob"); // the sender, alice, has not opted in
        await alpha.SendTypingAsync("alice"u8.ToArray(), "beta", "bob"u8.ToArray(), TypingState.TypingStarted, cancel);
        await KeyBundleTests.WaitUntilAsync(() => !errors.IsEmpty, "no refusal arrived for the typing notice");
        Assert.Equal(ErrorCode.NotOptedIn, Assert.Single(errors).Code);
        Assert.Equal(0, relay.Server.Typing!.Delivered);

        await ConsentUsers.GrantAsync(alpha, "alice");
        await alpha.SendTypingAsync("alice"u8.ToArray(), "beta", "bob"u8.ToArray(), TypingState.TypingStopped, cancel);
        Typing typing = await FirstAsync(beta.ReadTypingAsync(cancel));

        Assert.Equal(TypingState.TypingStopped, typing.State); // the refused notice (started) never arrived
        Assert.Equal(1, relay.Server.Typing.Delivered);
    }

    private static async Task<T> FirstAsync<T>(IAsyncEnumerable<T> items)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (T item in items.WithCancellation(deadline.Token))
        {
            return item;
        }

        throw new InvalidOperationException("the stream ended");
    }
}
