using System.Buffers;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Transport;

/// <summary>
/// A partner may use its session as soon as it has the Welcome: frames routed live to it (key-bundle requests, typing)
/// from that moment reach it, however long the relay takes to finish opening the session on its side.
/// </summary>
public sealed class SessionRegistrationTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public SessionRegistrationTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_key_bundle_request_routed_right_after_the_targets_Welcome_reaches_the_target()
    {
        // The relay holds beta's session between writing the Welcome and the rest of opening it (SessionOpened is
        // reported there) until the request has been routed: the window a fast partner can hit on a loaded machine.
        using var opening = new HeldOpening("beta");
        await using TestRelay relay = TestRelay.Start(_pki, opening, o => o.Interop.KeyBundleTimeout = TimeSpan.FromSeconds(20));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta"); // returns once beta has its Welcome
        Assert.True(opening.Reached.Wait(TimeSpan.FromSeconds(30)), "beta's session never reported SessionOpened");

        Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync("alice"u8.ToArray(), "beta", "bob"u8.ToArray(), TestContext.Current.CancellationToken);
        await Relayd.Tests.Interop.KeyBundleTests.WaitUntilAsync(() => relay.Server.KeyBundles!.PendingCount == 1, "the request was never routed");
        opening.Release.Set();

        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        bounded.CancelAfter(TimeSpan.FromSeconds(10)); // well inside the 20 s timeout: a request left undelivered fails here
        KeyBundleRequest? request = null;
        try
        {
            await foreach (KeyBundleRequest r in beta.ReadKeyBundleRequestsAsync(bounded.Token).WithCancellation(bounded.Token))
            {
                request = r;
                break;
            }
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested)
        {
        }

        Assert.NotNull(request);
        await beta.RespondKeyBundleAsync(request, new byte[] { 1, 2, 3 }, TestContext.Current.CancellationToken);
        Assert.Equal([1, 2, 3], (await answer.Within()).Bundle.ToByteArray());
    }

    /// <summary>Blocks the opening of one partner's session where it reports SessionOpened, until released.</summary>
    private sealed class HeldOpening(string partner) : ISupportEvents, IDisposable
    {
        public ManualResetEventSlim Reached { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public void SessionOpened(PartnerInfo opened, long connectionId, long nowMs)
        {
            if (opened.Id == partner)
            {
                Reached.Set();
                Release.Wait(TimeSpan.FromSeconds(60));
            }
        }

        public void Dispose()
        {
            Release.Set();
            Reached.Dispose();
            Release.Dispose();
        }

        public void SessionClosed(PartnerInfo closed, long connectionId, string reason, long nowMs)
        {
        }

        public void EnvelopeRefused(PartnerInfo sender, long connectionId, in ReadOnlySequence<byte> messageId, int frameBytes, ErrorCode code, string detail, long nowMs)
        {
        }

        public void EnvelopeAccepted(in AcceptedEnvelope envelope)
        {
        }

        public void EnvelopeDuplicate(PartnerInfo sender, long connectionId, UInt128 messageId, long nowMs)
        {
        }

        public void EnvelopesDurable(PartnerInfo sender, long connectionId, Relayd.Storage.DurableMark first, Relayd.Storage.DurableMark through, int envelopes, long nowMs)
        {
        }

        public void EnvelopeDelivered(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long nowMs)
        {
        }

        public void EnvelopeAcknowledged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long connectionId, ulong deliveryId, long acceptedAtMs, long firstSentAtMs, long nowMs)
        {
        }

        public void ReceiptProduced(PartnerInfo sender, UInt128 messageId, ReceiptStatus status, ErrorCode code, long connectionId, long nowMs)
        {
        }

        public void EnvelopeExpired(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
        {
        }

        public void EnvelopeRefusedQueued(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, ErrorCode code, long nowMs)
        {
        }

        public void EnvelopePurged(PartnerInfo? sender, UInt128 messageId, PartnerInfo recipient, long nowMs)
        {
        }

        public void MediaEvent(in MediaEventInfo media)
        {
        }

        public void KeyBundleEvent(PartnerInfo requester, PartnerInfo? target, ulong requestId, KeyBundleEventKind kind, ErrorCode status, long nowMs)
        {
        }

        public void AbuseReported(PartnerInfo reporter, PartnerInfo? reported, in ReadOnlySequence<byte> reportId, UInt128 messageId, long nowMs)
        {
        }
    }
}
