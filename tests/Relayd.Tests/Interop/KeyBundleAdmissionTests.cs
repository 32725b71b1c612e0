using System.Buffers;
using System.Collections.Concurrent;
using Google.Protobuf;
using Relayd.Admission;
using Relayd.Interop;
using Relayd.Interop.KeyBundles;
using Relayd.Protocol.V1;
using Relayd.Routing;

namespace Relayd.Tests.Interop;

/// <summary>
/// The key-bundle exchange's own rules, without sockets: what the admission pipeline refuses reaches the requester as
/// a KeyBundleResponse with its code and retry-after, and the pending table is bounded and forgets closed sessions.
/// The consent policy and rate limiter here are in-test implementations of the admission seams, standing in for
/// the real consent table and token buckets, which other parts of #13 build.
/// </summary>
public sealed class KeyBundleAdmissionTests
{
    private readonly PartnerDirectory _partners;
    private readonly LiveSession _alpha;
    private readonly LiveSession _beta;

    public KeyBundleAdmissionTests()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        options.Partners.Add(new PartnerOptions { Id = "beta" });
        _partners = new PartnerDirectory(options);
        _alpha = new LiveSession(_partners.Find("alpha")!);
        _beta = new LiveSession(_partners.Find("beta")!);
    }

    [Fact]
    public void Users_who_have_not_opted_in_get_NOT_OPTED_IN_and_nothing_reaches_the_target()
    {
        using var exchange = Exchange(new InteropPolicy(new NobodyOptedIn(), NoRateLimits.Instance));

        KeyBundleResponse? refusal = exchange.Request(_alpha, Request(1), new Sessions(_beta));

        Assert.Equal(ErrorCode.NotOptedIn, refusal?.Code);
        Assert.Equal(1UL, refusal!.RequestId);
        Assert.Empty(_beta.Frames);
        Assert.Equal(0, exchange.PendingCount);
    }

    [Fact]
    public void A_rate_limited_request_carries_the_limiter_s_retry_after()
    {
        using var exchange = Exchange(new InteropPolicy(NoConsentRequired.Instance, new RefuseEverything(retryAfterMs: 1234)));

        KeyBundleResponse? refusal = exchange.Request(_alpha, Request(1), new Sessions(_beta));

        Assert.Equal(ErrorCode.RateLimited, refusal?.Code);
        Assert.Equal(1234u, refusal!.RetryAfterMs);
        Assert.Empty(_beta.Frames);
    }

    [Fact]
    public void A_request_id_already_waiting_is_refused_and_the_first_request_stays()
    {
        using var exchange = Exchange(InteropPolicy.None);

        Assert.Null(exchange.Request(_alpha, Request(5), new Sessions(_beta)));
        KeyBundleResponse? again = exchange.Request(_alpha, Request(5), new Sessions(_beta));

        Assert.Equal(ErrorCode.InvalidRequest, again?.Code);
        Assert.Contains("already waiting", again!.Detail, StringComparison.Ordinal);
        Assert.Equal(1, exchange.PendingCount);
        Assert.Single(_beta.Frames);
    }

    [Fact]
    public void Requests_waiting_beyond_the_per_partner_cap_are_RATE_LIMITED()
    {
        using var exchange = Exchange(InteropPolicy.None, o => o.KeyBundlePendingPerPartner = 2);

        Assert.Null(exchange.Request(_alpha, Request(1), new Sessions(_beta)));
        Assert.Null(exchange.Request(_alpha, Request(2), new Sessions(_beta)));
        KeyBundleResponse? third = exchange.Request(_alpha, Request(3), new Sessions(_beta));

        Assert.Equal(ErrorCode.RateLimited, third?.Code);
        Assert.True(third!.RetryAfterMs > 0);
        Assert.Equal(2, exchange.PendingCount);
    }

    [Fact]
    public void A_closed_requester_s_requests_are_forgotten_without_an_answer()
    {
        using var exchange = Exchange(InteropPolicy.None);
        exchange.Request(_alpha, Request(1), new Sessions(_beta));

        _alpha.IsClosing = true;
        exchange.Sweep();

        Assert.Equal(0, exchange.PendingCount);
        Assert.Empty(_alpha.Frames);
        Assert.Equal(0, exchange.TimedOut);
    }

    [Fact]
    public void An_answer_to_a_request_nobody_made_is_dropped_and_counted()
    {
        using var exchange = Exchange(InteropPolicy.None);

        Error? refusal = exchange.Answer(_beta, new KeyBundleResponse { RequestId = 99, RequesterPartner = "alpha", Bundle = ByteString.CopyFromUtf8("x") });

        Assert.Null(refusal);
        Assert.Equal(1, exchange.LateAnswers);
        Assert.Empty(_alpha.Frames);
    }

    private KeyBundleExchange Exchange(InteropPolicy policy, Action<InteropOptions>? configure = null)
    {
        var options = new InteropOptions();
        configure?.Invoke(options);
        return new KeyBundleExchange(_partners, policy, options, TimeProvider.System);
    }

    private static KeyBundleRequest Request(ulong id) => new()
    {
        RequestId = id,
        RequesterPartner = "alpha",
        RequesterUser = ByteString.CopyFromUtf8("alice"),
        TargetPartner = "beta",
        TargetUser = ByteString.CopyFromUtf8("bob"),
    };

    private sealed class LiveSession(PartnerInfo partner) : ILiveSession
    {
        public ConcurrentQueue<Frame> Frames { get; } = new();

        public PartnerInfo Partner { get; } = partner;

        public bool IsClosing { get; set; }

        public bool TryEnqueueFrame(Frame frame)
        {
            Frames.Enqueue(frame);
            return true;
        }
    }

    private sealed class Sessions(LiveSession target) : ILiveSessions
    {
        public ILiveSession? AnyLiveSessionOf(PartnerInfo partner) => ReferenceEquals(partner, target.Partner) ? target : null;
    }

    private sealed class NobodyOptedIn : IConsentPolicy
    {
        public bool Required => true;

        public bool OptedIn(IAdmissionPartner partner, in ReadOnlySequence<byte> user, IAdmissionPartner counterpart) => false;
    }

    private sealed class RefuseEverything(uint retryAfterMs) : IRateLimiter
    {
        public bool TryTake(in AdmissionRequest request, out AdmissionRefusal refusal)
        {
            refusal = new AdmissionRefusal(ErrorCode.RateLimited, "over the test's limit", retryAfterMs);
            return false;
        }
    }
}
