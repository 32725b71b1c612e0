using Relayd.Hosting;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// Capabilities and the relay's content-kind policy: a sender learns what a partner takes before sending, and a kind
/// the relay does not carry (the launch profile leaves out sticker, status and reaction) is refused, naming it.
/// </summary>
public sealed class CapabilitiesTests : IClassFixture<PkiFixture>
{
    private static readonly ContentKind[] LaunchProfile = [ContentKind.Text, ContentKind.Image, ContentKind.Video, ContentKind.Voice, ContentKind.File];
    private readonly TestPki _pki;

    public CapabilitiesTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Capabilities_combine_the_relay_s_policy_the_partner_s_configuration_and_its_Hello()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            PartnerOptions beta = o.Partners.First(p => p.Id == "beta");
            beta.AcceptedKinds.Add(ContentKind.Text);
            beta.AcceptedKinds.Add(ContentKind.Image);
            beta.AcceptedKinds.Add(ContentKind.Voice);
            beta.MaxMediaBytes = 123_456;
        });
        await using RelayClient beta = await relay.ConnectAsync("beta", o => o with
        {
            AcceptedKinds = [ContentKind.Text, ContentKind.Voice, ContentKind.Sticker],
            AcceptsTyping = true,
            AcceptsReadReceipts = false,
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        Capabilities capabilities = await alpha.GetCapabilitiesAsync("beta", TestContext.Current.CancellationToken).Within();

        Assert.Equal("beta", capabilities.Partner);
        Assert.Equal([ContentKind.Text, ContentKind.Voice], capabilities.Kinds);
        Assert.Equal(123_456UL, capabilities.MaxMediaBytes);
        Assert.True(capabilities.Typing);
        Assert.False(capabilities.ReadReceipts);
        Assert.False(capabilities.Groups);
        Assert.False(capabilities.DisappearingMessages);
    }

    [Fact]
    public async Task A_partner_without_restrictions_is_listed_with_every_kind_the_relay_carries_and_its_read_receipt_flag()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient gamma = await relay.ConnectAsync("gamma", o => o with { AcceptsReadReceipts = true });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        Capabilities capabilities = await alpha.GetCapabilitiesAsync("gamma", TestContext.Current.CancellationToken).Within();

        Assert.Equal(LaunchProfile, capabilities.Kinds);
        Assert.Equal((ulong)MediaOptions.DefaultMaxBytes, capabilities.MaxMediaBytes);
        Assert.True(capabilities.ReadReceipts);
        Assert.False(capabilities.Typing);
    }

    [Fact]
    public async Task With_the_policy_widened_every_kind_is_listed()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => WidenToEveryKind(o.Interop));
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        Capabilities capabilities = await alpha.GetCapabilitiesAsync("beta", TestContext.Current.CancellationToken).Within();

        Assert.Equal([.. LaunchProfile, ContentKind.Sticker, ContentKind.Status, ContentKind.Reaction], capabilities.Kinds);
    }

    [Fact]
    public async Task Capabilities_of_an_unknown_partner_are_UNKNOWN_RECIPIENT_PARTNER_and_the_connection_stays_open()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.GetCapabilitiesAsync("nobody", TestContext.Current.CancellationToken).Within());
        Capabilities after = await alpha.GetCapabilitiesAsync("beta", TestContext.Current.CancellationToken).Within();

        Assert.Equal(ErrorCode.UnknownRecipientPartner, refused.Code);
        Assert.Contains("nobody", refused.Detail, StringComparison.Ordinal);
        Assert.Equal("beta", after.Partner);
    }

    [Theory]
    [InlineData(ContentKind.Sticker, "sticker")]
    [InlineData(ContentKind.Status, "status")]
    [InlineData(ContentKind.Reaction, "reaction")]
    public async Task The_launch_profile_refuses_a_kind_it_leaves_out_naming_the_kind_for_envelopes_and_media(ContentKind kind, string name)
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope envelope = Envelopes.New("alpha", "beta");
        envelope.ContentKind = kind;
        using var blob = new LoadGen.Media.BlobStream(1000, seed: 1);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob, kind: kind);
        blob.Position = 0;

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(envelope).Within());
        RelayException refusedMedia = await Envelopes.RefusedAsync(() => alpha.SendMediaAsync(open, blob).Within());

        Assert.Equal(ErrorCode.ContentKindUnsupported, refused.Code);
        Assert.Contains($"does not carry {name}", refused.Detail, StringComparison.Ordinal);
        Assert.Contains("[interop] kinds allow text, image, video, voice, file", refused.Detail, StringComparison.Ordinal);
        Assert.Equal(ErrorCode.ContentKindUnsupported, refusedMedia.Code);
        Assert.Contains(name, refusedMedia.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Kinds_the_configuration_adds_to_the_policy_are_carried()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => WidenToEveryKind(o.Interop));
        await using RelayClient beta = await relay.ConnectAsync("beta");
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        foreach (ContentKind kind in (ContentKind[])[ContentKind.Sticker, ContentKind.Status, ContentKind.Reaction])
        {
            Envelope envelope = Envelopes.New("alpha", "beta");
            envelope.ContentKind = kind;
            await alpha.SendAsync(envelope).Within();
            Deliver delivered = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
            Assert.Equal(kind, delivered.Envelope.ContentKind);
        }
    }

    [Fact]
    public async Task A_policy_narrower_than_the_launch_profile_refuses_what_it_leaves_out()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Interop.Kinds.Clear();
            o.Interop.Kinds.Add(ContentKind.Text);
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        Envelope video = Envelopes.New("alpha", "beta");
        video.ContentKind = ContentKind.Video;

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(video).Within());
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();

        Assert.Equal(ErrorCode.ContentKindUnsupported, refused.Code);
        Assert.Contains("does not carry video (its [interop] kinds allow text)", refused.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void The_interop_kinds_key_replaces_the_launch_profile_and_an_empty_list_is_an_error()
    {
        RelayOptions defaults = RelayConfigLoader.Load(_pki.WriteMinimalConfig(""));
        RelayOptions widened = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [interop]
            kinds = ["text", "sticker"]
            key_bundle_timeout_ms = 750
            key_bundle_max_bytes = 2048
            key_bundle_pending_per_partner = 8
            """));
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(_pki.WriteMinimalConfig("""
            [interop]
            kinds = []
            key_bundle_timeout_ms = 1
            """));

        Assert.Equal(LaunchProfile, defaults.Interop.Kinds);
        Assert.Equal([ContentKind.Text, ContentKind.Sticker], widened.Interop.Kinds);
        Assert.Equal(TimeSpan.FromMilliseconds(750), widened.Interop.KeyBundleTimeout);
        Assert.Equal(2048, widened.Interop.KeyBundleMaxBytes);
        Assert.Equal(8, widened.Interop.KeyBundlePendingPerPartner);
        Assert.Contains(errors, e => e.Key == "interop.kinds" && e.Line == 2);
        Assert.Contains(errors, e => e.Key == "interop.key_bundle_timeout_ms" && e.Line == 3);
    }

    [Fact]
    public async Task A_protoc_encoded_CapabilitiesRequest_is_answered_with_Capabilities_that_decode_with_protoc()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await ProtocFrames.SendAsync(beta, "hello { versions: PROTOCOL_VERSION_1 accepted_kinds: CONTENT_KIND_TEXT accepts_typing: true }");
        await ProtocFrames.ReceiveAsync(beta);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await ProtocFrames.SendAsync(alpha, "hello { versions: PROTOCOL_VERSION_1 }");
        await ProtocFrames.ReceiveAsync(alpha);

        await ProtocFrames.SendAsync(alpha, "capabilities_request { request_id: 42 partner: \"beta\" }");
        string answer = await ProtocFrames.ReceiveAsync(alpha);

        Assert.Contains("capabilities {", answer, StringComparison.Ordinal);
        Assert.Contains("request_id: 42", answer, StringComparison.Ordinal);
        Assert.Contains("partner: \"beta\"", answer, StringComparison.Ordinal);
        Assert.Contains("kinds: CONTENT_KIND_TEXT", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("CONTENT_KIND_IMAGE", answer, StringComparison.Ordinal);
        Assert.Contains("typing: true", answer, StringComparison.Ordinal);
    }

    [Fact]
    public void The_relay_s_policy_is_checked_before_the_recipient_s_kinds_and_admitting_allocates_nothing()
    {
        var policy = Relayd.Admission.RelayKindPolicy.Of(LaunchProfile);
        var pipeline = Relayd.Admission.AdmissionPipelines.Envelopes(new RelayLimits(), Relayd.Admission.InteropPolicy.None with { Kinds = policy });
        Type[] rules = [.. pipeline.Rules.Select(r => r.GetType())];
        bool allowed = true;
        for (int i = 0; i < 1000; i++)
        {
            allowed &= policy.Allows((int)ContentKind.Text); // warm-up
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            allowed &= policy.Allows((int)ContentKind.Video) && !policy.Allows((int)ContentKind.Sticker);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allowed);
        Assert.InRange(allocated, 0, 1024); // an allocation per check would be 10,000 of them
        Assert.True(Array.IndexOf(rules, typeof(Relayd.Admission.RelayKindsRule)) < Array.IndexOf(rules, typeof(Relayd.Admission.ContentKindRule)));
        Assert.False(policy.Allows(0)); // a message that names no kind is not one the policy carries
    }

    [Fact]
    public void Read_receipts_and_typing_are_declared_only_when_every_connection_of_the_partner_declares_them()
    {
        static Relayd.Routing.ReceiveDeclaration Hello(bool receipts, bool typing) =>
            Relayd.Routing.ReceiveDeclaration.FromHello(new Hello { AcceptsReadReceipts = receipts, AcceptsTyping = typing });

        var both = Relayd.Routing.ReceiveDeclaration.Combine([Hello(true, true), Hello(true, true)]);
        var mixed = Relayd.Routing.ReceiveDeclaration.Combine([Hello(true, true), Hello(false, true), Hello(true, false)]);
        var none = Relayd.Routing.ReceiveDeclaration.Combine([]);

        Assert.True(both.AcceptsReadReceipts && both.AcceptsTyping);
        Assert.True(both.AcceptsAll); // the flags leave the kinds alone
        Assert.False(mixed.AcceptsReadReceipts);
        Assert.False(mixed.AcceptsTyping);
        Assert.False(none.AcceptsReadReceipts || none.AcceptsTyping);
        Assert.False(Relayd.Routing.ReceiveDeclaration.FromHello(new Hello()).AcceptsTyping);
    }

    private static void WidenToEveryKind(InteropOptions interop)
    {
        interop.Kinds.Add(ContentKind.Sticker);
        interop.Kinds.Add(ContentKind.Status);
        interop.Kinds.Add(ContentKind.Reaction);
    }
}
