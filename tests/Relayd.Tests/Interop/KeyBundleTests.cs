using System.Diagnostics;
using Google.Protobuf;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Key-bundle exchange over real TLS: a request is routed to the target partner and its answer back, byte for byte;
/// every request gets exactly one answer, the relay's own when the target is away, silent, wrong or too generous.
/// </summary>
public sealed class KeyBundleTests : IClassFixture<PkiFixture>
{
    private static readonly byte[] Alice = "alice"u8.ToArray();
    private static readonly byte[] Bob = "bob"u8.ToArray();
    private readonly TestPki _pki;

    public KeyBundleTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_request_reaches_the_target_and_its_bundle_comes_back_unchanged()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        byte[] bundle = Envelopes.RandomCiphertext(3000);

        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync(Alice, "beta", Bob, TestContext.Current.CancellationToken);
        KeyBundleRequest request = await FirstRequestAsync(beta);
        await beta.RespondKeyBundleAsync(request, bundle, TestContext.Current.CancellationToken);
        KeyBundleResponse response = await answer.Within();

        Assert.Equal("alpha", request.RequesterPartner);
        Assert.Equal(Alice, request.RequesterUser.ToByteArray());
        Assert.Equal("beta", request.TargetPartner);
        Assert.Equal(Bob, request.TargetUser.ToByteArray());
        Assert.Equal(bundle, response.Bundle.ToByteArray());
        Assert.Equal("beta", response.TargetPartner);
        Assert.Equal(ErrorCode.Unspecified, response.Code);
        Assert.Equal(0, relay.Server.KeyBundles!.PendingCount);
    }

    [Fact]
    public async Task A_status_from_the_target_reaches_the_requester_as_that_code()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync(Alice, "beta", Bob, TestContext.Current.CancellationToken);
        await beta.DeclineKeyBundleAsync(await FirstRequestAsync(beta), ErrorCode.KeyBundleExhausted, TestContext.Current.CancellationToken);
        RelayException refused = await Envelopes.RefusedAsync(() => answer.Within());

        Assert.Equal(ErrorCode.KeyBundleExhausted, refused.Code);
    }

    [Fact]
    public async Task With_the_target_offline_the_requester_gets_KEY_BUNDLE_TIMEOUT_after_the_timeout()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Interop.KeyBundleTimeout = TimeSpan.FromMilliseconds(300));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        var clock = Stopwatch.StartNew();
        RelayException refused = await Envelopes.RefusedAsync(() => alpha.RequestKeyBundleAsync(Alice, "beta", Bob, TestContext.Current.CancellationToken));
        TimeSpan took = clock.Elapsed;

        Assert.Equal(ErrorCode.KeyBundleTimeout, refused.Code);
        Assert.Contains("no session", refused.Detail, StringComparison.Ordinal);
        Assert.True(took >= TimeSpan.FromMilliseconds(300), $"answered after {took.TotalMilliseconds} ms, before the 300 ms timeout");
        Assert.True(took < TimeSpan.FromSeconds(3), $"answered after {took.TotalMilliseconds} ms, long after the 300 ms timeout");
        Assert.Equal(1, relay.Server.KeyBundles!.TimedOut);
    }

    [Fact]
    public async Task With_the_target_silent_the_requester_gets_KEY_BUNDLE_TIMEOUT_and_a_late_answer_is_dropped()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Interop.KeyBundleTimeout = TimeSpan.FromMilliseconds(300));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        var clock = Stopwatch.StartNew();
        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync(Alice, "beta", Bob, TestContext.Current.CancellationToken);
        KeyBundleRequest request = await FirstRequestAsync(beta);
        RelayException refused = await Envelopes.RefusedAsync(() => answer.Within());
        TimeSpan took = clock.Elapsed;
        await beta.RespondKeyBundleAsync(request, "too late"u8.ToArray(), TestContext.Current.CancellationToken);
        await WaitUntilAsync(() => relay.Server.KeyBundles!.LateAnswers == 1, "the late answer was never counted");

        Assert.Equal(ErrorCode.KeyBundleTimeout, refused.Code);
        Assert.Contains("did not answer", refused.Detail, StringComparison.Ordinal);
        Assert.True(took >= TimeSpan.FromMilliseconds(300) && took < TimeSpan.FromSeconds(3), $"answered after {took.TotalMilliseconds} ms (timeout 300 ms)");
    }

    [Fact]
    public async Task An_answer_from_a_partner_the_request_was_not_made_to_is_refused_and_the_target_can_still_answer()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RawPartnerConnection gamma = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("gamma"), _pki.Ca);
        await gamma.SendHelloAsync();
        await gamma.ReadFrameAsync();

        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync(Alice, "beta", Bob, TestContext.Current.CancellationToken);
        KeyBundleRequest request = await FirstRequestAsync(beta);
        await gamma.SendAsync(new Frame
        {
            KeyBundleResponse = new KeyBundleResponse { RequestId = request.RequestId, RequesterPartner = "alpha", Bundle = ByteString.CopyFromUtf8("forged") },
        });
        Frame? refusal = await gamma.ReadFrameAsync();
        await beta.RespondKeyBundleAsync(request, "genuine"u8.ToArray(), TestContext.Current.CancellationToken);
        KeyBundleResponse response = await answer.Within();

        Assert.Equal(ErrorCode.SenderMismatch, refusal?.Error?.Code);
        Assert.Equal(request.RequestId, refusal!.Error.RequestId);
        Assert.False(refusal.Error.Fatal);
        Assert.Equal("genuine", response.Bundle.ToStringUtf8());
        Assert.Equal("beta", response.TargetPartner);
    }

    [Fact]
    public async Task A_bundle_over_the_limit_reaches_the_requester_as_KEY_BUNDLE_TOO_LARGE()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Interop.KeyBundleMaxBytes = 1024);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        var targetErrors = new System.Collections.Concurrent.ConcurrentQueue<RelayException>();
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with { OnRelayError = targetErrors.Enqueue });

        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync(Alice, "beta", Bob, TestContext.Current.CancellationToken);
        await beta.RespondKeyBundleAsync(await FirstRequestAsync(beta), new byte[1025], TestContext.Current.CancellationToken);
        RelayException refused = await Envelopes.RefusedAsync(() => answer.Within());
        await WaitUntilAsync(() => !targetErrors.IsEmpty, "the target was not told its bundle was too large");

        Assert.Equal(ErrorCode.KeyBundleTooLarge, refused.Code);
        Assert.Contains("1025", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.KeyBundleTooLarge, Assert.Single(targetErrors).Code);
    }

    [Fact]
    public async Task A_bundle_exactly_at_the_limit_is_forwarded()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Interop.KeyBundleMaxBytes = 1024);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync(Alice, "beta", Bob, TestContext.Current.CancellationToken);
        await beta.RespondKeyBundleAsync(await FirstRequestAsync(beta), new byte[1024], TestContext.Current.CancellationToken);

        Assert.Equal(1024, (await answer.Within()).Bundle.Length);
    }

    [Fact]
    public async Task A_request_for_an_unknown_partner_or_without_users_is_answered_at_once_with_its_code()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        RelayException unknown = await Envelopes.RefusedAsync(() => alpha.RequestKeyBundleAsync(Alice, "nobody", Bob, TestContext.Current.CancellationToken));
        RelayException noTarget = await Envelopes.RefusedAsync(() => alpha.RequestKeyBundleAsync(Alice, "beta", ReadOnlyMemory<byte>.Empty, TestContext.Current.CancellationToken));
        RelayException noRequester = await Envelopes.RefusedAsync(() => alpha.RequestKeyBundleAsync(ReadOnlyMemory<byte>.Empty, "beta", Bob, TestContext.Current.CancellationToken));

        Assert.Equal(ErrorCode.UnknownRecipientPartner, unknown.Code);
        Assert.Contains("nobody", unknown.Detail, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.InvalidRequest, noTarget.Code);
        Assert.Contains("target_user", noTarget.Detail, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.InvalidRequest, noRequester.Code);
        Assert.Contains("requester_user", noRequester.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Protoc_encoded_KeyBundleRequest_and_KeyBundleResponse_are_routed_and_decode_with_protoc()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await ProtocFrames.SendAsync(alpha, "hello { versions: PROTOCOL_VERSION_1 }");
        await ProtocFrames.SendAsync(beta, "hello { versions: PROTOCOL_VERSION_1 }");
        await ProtocFrames.ReceiveAsync(alpha);
        await ProtocFrames.ReceiveAsync(beta);

        await ProtocFrames.SendAsync(alpha, """
            key_bundle_request { request_id: 7 requester_partner: "alpha" requester_user: "alice" target_partner: "beta" target_user: "bob" }
            """);
        string forwarded = await ProtocFrames.ReceiveAsync(beta);
        await ProtocFrames.SendAsync(beta, """
            key_bundle_response { request_id: 7 requester_partner: "alpha" bundle: "prekey-bundle-bytes" }
            """);
        string answered = await ProtocFrames.ReceiveAsync(alpha);

        Assert.Contains("key_bundle_request {", forwarded, StringComparison.Ordinal);
        Assert.Contains("request_id: 7", forwarded, StringComparison.Ordinal);
        Assert.Contains("requester_user: \"alice\"", forwarded, StringComparison.Ordinal);
        Assert.Contains("target_user: \"bob\"", forwarded, StringComparison.Ordinal);
        Assert.Contains("key_bundle_response {", answered, StringComparison.Ordinal);
        Assert.Contains("bundle: \"prekey-bundle-bytes\"", answered, StringComparison.Ordinal);
        Assert.Contains("target_partner: \"beta\"", answered, StringComparison.Ordinal);
    }

    private static async Task<KeyBundleRequest> FirstRequestAsync(RelayClient target)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bounded.CancelAfter(TimeSpan.FromSeconds(30)); // a request that never arrives fails the test instead of hanging it
        await foreach (KeyBundleRequest request in target.ReadKeyBundleRequestsAsync(bounded.Token).WithCancellation(bounded.Token))
        {
            return request;
        }

        throw new Xunit.Sdk.XunitException("the target's connection ended without a request");
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, string failure, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException(failure);
            }

            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
