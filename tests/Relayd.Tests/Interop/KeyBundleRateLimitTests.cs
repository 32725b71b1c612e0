using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Key-bundle scraping is cut per requester user (<c>[interop] key_bundle_requests_per_minute</c>): end to end over
/// real TLS, the key-bundle route's admission with the relay's own rate limiter in it.
/// </summary>
public sealed class KeyBundleRateLimitTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public KeyBundleRateLimitTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_requester_user_over_its_key_bundle_rate_gets_RATE_LIMITED_with_a_retry_after_and_nothing_reaches_the_target()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Interop.RateLimits = true;
            o.Interop.KeyBundleRequestsPerMinute = 3;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        CancellationToken cancel = TestContext.Current.CancellationToken;
        using var answering = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        int forwarded = 0;
        Task answerer = Task.Run(async () =>
        {
            await foreach (KeyBundleRequest request in beta.ReadKeyBundleRequestsAsync(answering.Token))
            {
                Interlocked.Increment(ref forwarded);
                await beta.RespondKeyBundleAsync(request, "bundle"u8.ToArray(), answering.Token);
            }
        }, answering.Token);

        for (int i = 0; i < 3; i++)
        {
            KeyBundleResponse ok = await alpha.RequestKeyBundleAsync("alice"u8.ToArray(), "beta", "bob"u8.ToArray(), cancel).Within();
            Assert.Equal(ErrorCode.Unspecified, ok.Code);
        }

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.RequestKeyBundleAsync("alice"u8.ToArray(), "beta", "carol"u8.ToArray(), cancel).Within());

        Assert.Equal(ErrorCode.RateLimited, refused.Code);
        Assert.Contains("key-bundle requests/minute", refused.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("alice", refused.Detail, StringComparison.Ordinal);
        Assert.InRange(refused.RetryAfterMs, 1u, 20_000u); // a third of a minute at 3/minute, less what has passed
        Assert.Equal(3, Volatile.Read(ref forwarded));

        // Another requester user of the same partner is not held back.
        KeyBundleResponse other = await alpha.RequestKeyBundleAsync("anna"u8.ToArray(), "beta", "bob"u8.ToArray(), cancel).Within();
        Assert.Equal(ErrorCode.Unspecified, other.Code);

        await answering.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => answerer);
    }
}
