using System.Buffers;
using System.Text;
using Relayd.Admission;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Admission;

/// <summary>
/// The admission rules, one by one and in each path's order: each refuses with its code and detail (worded for an
/// envelope or a MediaOpen as partners have always read them) and admits otherwise; the first refusal answers.
/// </summary>
public sealed class AdmissionPipelineTests
{
    private const long Now = 1_765_000_000_000;
    private const int BetaMaxFrameBytes = 4096;

    private static readonly ReadOnlySequence<byte> AlphaUtf8 = new("alpha"u8.ToArray());

    private readonly PartnerInfo _alpha;
    private readonly PartnerInfo _beta;   // configured for CONTENT_KIND_TEXT and VOICE, its connection declared TEXT only and 4096-byte frames
    private readonly PartnerInfo _gamma;  // takes everything
    private readonly AdmissionPipeline _envelopes;
    private readonly AdmissionPipeline _mediaOpens;

    public AdmissionPipelineTests()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        var beta = new PartnerOptions { Id = "beta" };
        beta.AcceptedKinds.Add(ContentKind.Text);
        beta.AcceptedKinds.Add(ContentKind.Voice);
        options.Partners.Add(beta);
        options.Partners.Add(new PartnerOptions { Id = "gamma" });
        options.Limits.QueueFullRetryAfter = TimeSpan.FromMilliseconds(750);
        var partners = new PartnerDirectory(options);
        _alpha = partners.Find("alpha")!;
        _beta = partners.Find("beta")!;
        _gamma = partners.Find("gamma")!;
        _beta.Mailbox.Attach(new DeclaringConsumer(ReceiveDeclaration.FromHello(new Hello { AcceptedKinds = { ContentKind.Text }, MaxFrameBytes = BetaMaxFrameBytes })));
        _envelopes = AdmissionPipelines.Envelopes(options.Limits, InteropPolicy.None);
        _mediaOpens = AdmissionPipelines.MediaOpen(InteropPolicy.None);
    }

    // ------------------------------------------------------------------ each rule

    [Fact]
    public void SenderRule_refuses_an_envelope_claiming_another_partner_with_SENDER_MISMATCH_without_echoing_the_claim()
    {
        var rule = new SenderRule();

        Assert.True(rule.Check(Envelope(), out _));
        Assert.True(rule.Check(Envelope() with { SenderPartnerUtf8 = SegmentedSequence.Of("alpha"u8.ToArray(), chunkSize: 2) }, out _));
        AssertRefused(rule, Envelope() with { SenderPartnerUtf8 = Utf8("gamma") }, ErrorCode.SenderMismatch, "sender_partner is not the authenticated partner 'alpha'");
        AssertRefused(rule, Envelope() with { SenderPartnerUtf8 = Utf8("alph") }, ErrorCode.SenderMismatch, "sender_partner is not the authenticated partner 'alpha'");
        AssertRefused(rule, Envelope() with { SenderPartnerUtf8 = SegmentedSequence.Of("alphb"u8.ToArray(), chunkSize: 2) }, ErrorCode.SenderMismatch, "sender_partner is not the authenticated partner 'alpha'");
    }

    [Fact]
    public void SenderRule_refuses_a_MediaOpen_claiming_another_partner_with_SENDER_MISMATCH_naming_the_claim()
    {
        var rule = new SenderRule();

        Assert.True(rule.Check(MediaOpen(), out _));
        AssertRefused(rule, MediaOpen() with { SenderPartnerText = "gamma" }, ErrorCode.SenderMismatch, "sender_partner 'gamma' is not the authenticated partner 'alpha'");
        AssertRefused(rule, MediaOpen() with { SenderPartnerText = "ALPHA" }, ErrorCode.SenderMismatch, "sender_partner 'ALPHA' is not the authenticated partner 'alpha'");
    }

    [Fact]
    public void EnvelopeFieldsRule_refuses_a_message_id_not_of_16_bytes_and_an_empty_recipient_user_with_INVALID_ENVELOPE()
    {
        var rule = new EnvelopeFieldsRule();

        Assert.True(rule.Check(Envelope(), out _));
        AssertRefused(rule, Envelope() with { MessageIdLength = 15 }, ErrorCode.InvalidEnvelope, "message_id must be 16 bytes, got 15");
        AssertRefused(rule, Envelope() with { MessageIdLength = 0 }, ErrorCode.InvalidEnvelope, "message_id must be 16 bytes, got 0");
        AssertRefused(rule, Envelope() with { RecipientUserEmpty = true }, ErrorCode.InvalidEnvelope, "recipient_user is empty");
    }

    [Fact]
    public void RecipientRule_refuses_a_partner_that_is_not_approved_with_UNKNOWN_RECIPIENT_PARTNER_in_each_paths_wording()
    {
        var rule = new RecipientRule();

        Assert.True(rule.Check(Envelope(), out _));
        Assert.True(rule.Check(MediaOpen(), out _));
        AssertRefused(rule, Envelope() with { Recipient = null }, ErrorCode.UnknownRecipientPartner, "recipient_partner is not an approved partner of this relay");
        AssertRefused(rule, MediaOpen() with { Recipient = null, RecipientPartnerText = "mallory" }, ErrorCode.UnknownRecipientPartner, "no approved partner 'mallory'");
    }

    [Fact]
    public void ContentKindRule_refuses_a_kind_the_configuration_or_the_recipients_Hello_excludes_with_CONTENT_KIND_UNSUPPORTED()
    {
        var rule = new ContentKindRule();

        Assert.True(rule.Check(Envelope() with { ContentKind = (int)ContentKind.Text }, out _));
        Assert.True(rule.Check(Envelope() with { Recipient = _gamma, ContentKind = 99 }, out _));
        AssertRefused(rule, Envelope() with { ContentKind = (int)ContentKind.Image }, ErrorCode.ContentKindUnsupported,
            "partner 'beta' does not accept CONTENT_KIND_IMAGE: the relay's configuration allows it [CONTENT_KIND_TEXT, CONTENT_KIND_VOICE]");
        AssertRefused(rule, MediaOpen() with { ContentKind = (int)ContentKind.Voice }, ErrorCode.ContentKindUnsupported,
            "partner 'beta' does not accept CONTENT_KIND_VOICE: its connections declared accepted_kinds [CONTENT_KIND_TEXT] in Hello");
    }

    [Fact]
    public void RecipientFrameLimitRule_refuses_a_frame_beyond_the_recipients_Hello_max_frame_bytes_with_FRAME_TOO_LARGE_in_each_paths_wording()
    {
        var rule = new RecipientFrameLimitRule();

        Assert.True(rule.Check(Envelope() with { RecipientFrameBytes = BetaMaxFrameBytes }, out _));
        Assert.True(rule.Check(Envelope() with { Recipient = _gamma, RecipientFrameBytes = int.MaxValue }, out _)); // declared none
        AssertRefused(rule, Envelope() with { RecipientFrameBytes = BetaMaxFrameBytes + 1 }, ErrorCode.FrameTooLarge,
            "the Deliver frame of this envelope takes up to 4097 bytes; partner 'beta' reads frames of at most 4096 bytes (its Hello.max_frame_bytes)");
        AssertRefused(rule, MediaOpen() with { RecipientFrameBytes = 5000 }, ErrorCode.FrameTooLarge,
            "the MediaOpen frame takes up to 5000 bytes; partner 'beta' reads frames of at most 4096 bytes (its Hello.max_frame_bytes)");
    }

    [Fact]
    public void MediaOpenFieldsRule_refuses_a_sha256_that_is_not_32_bytes_with_MALFORMED_FRAME()
    {
        var rule = new MediaOpenFieldsRule();

        Assert.True(rule.Check(MediaOpen(), out _));
        AssertRefused(rule, MediaOpen() with { Sha256Length = 31 }, ErrorCode.MalformedFrame, "sha256 must be 32 bytes");
        AssertRefused(rule, MediaOpen() with { Sha256Length = 0 }, ErrorCode.MalformedFrame, "sha256 must be 32 bytes");
    }

    [Fact]
    public void MediaSizeRule_refuses_a_declared_size_beyond_the_senders_limit_with_MEDIA_TOO_LARGE()
    {
        var rule = new MediaSizeRule();

        Assert.True(rule.Check(MediaOpen() with { DeclaredMediaBytes = 1000, SenderMediaLimitBytes = 1000 }, out _));
        AssertRefused(rule, MediaOpen() with { DeclaredMediaBytes = 1001, SenderMediaLimitBytes = 1000 }, ErrorCode.MediaTooLarge,
            "declared size 1001 exceeds the limit of 1000 bytes for partner 'alpha'");
        AssertRefused(rule, MediaOpen() with { DeclaredMediaBytes = ulong.MaxValue, SenderMediaLimitBytes = long.MaxValue }, ErrorCode.MediaTooLarge,
            $"declared size {ulong.MaxValue} exceeds the limit of {long.MaxValue} bytes for partner 'alpha'");
    }

    [Fact]
    public void ExpiryRule_refuses_an_expires_at_ms_now_or_before_with_EXPIRED_and_admits_none_or_later()
    {
        var rule = new ExpiryRule();

        Assert.True(rule.Check(Envelope() with { ExpiresAtMs = 0 }, out _));
        Assert.True(rule.Check(Envelope() with { ExpiresAtMs = Now + 1 }, out _));
        AssertRefused(rule, Envelope() with { ExpiresAtMs = Now }, ErrorCode.Expired, "expires_at_ms is in the past");
        AssertRefused(rule, MediaOpen() with { ExpiresAtMs = 1 }, ErrorCode.Expired, "expires_at_ms is in the past");
    }

    [Fact]
    public void StorageRule_refuses_with_STORAGE_FULL_and_the_relays_retry_after_while_the_disk_is_below_its_reserve()
    {
        var rule = new StorageRule(TimeSpan.FromMilliseconds(750));

        Assert.Equal(AdmissionStage.AfterDedup, rule.Stage);
        Assert.True(rule.Check(Envelope(), out _));
        AssertRefused(rule, Envelope() with { StorageFull = true }, ErrorCode.StorageFull, "the relay's disk is below its reserve; retry later", retryAfterMs: 750);
    }

    // ------------------------------------------------------------------ the pipelines

    [Fact]
    public void The_envelope_pipeline_admits_a_valid_envelope_at_both_stages()
    {
        Assert.True(_envelopes.Admit(Envelope(), out _));
        Assert.True(_envelopes.AdmitNew(Envelope(), out _));
    }

    [Fact]
    public void The_envelope_pipeline_checks_storage_only_after_dedup_so_a_resend_still_gets_its_Ack_while_the_disk_is_full()
    {
        AdmissionRequest full = Envelope() with { StorageFull = true };

        Assert.True(_envelopes.Admit(full, out _));
        Assert.False(_envelopes.AdmitNew(full, out AdmissionRefusal refusal));
        Assert.Equal(ErrorCode.StorageFull, refusal.Code);
    }

    [Fact]
    public void In_the_envelope_pipeline_the_first_refusal_answers_in_the_order_sender_fields_recipient_kind_frame_expiry_then_storage()
    {
        AdmissionRequest everythingWrong = Envelope() with
        {
            SenderPartnerUtf8 = Utf8("gamma"),
            MessageIdLength = 3,
            RecipientUserEmpty = true,
            Recipient = null,
            ContentKind = (int)ContentKind.Image,
            RecipientFrameBytes = BetaMaxFrameBytes + 1,
            ExpiresAtMs = Now - 1,
            StorageFull = true,
        };
        var answers = new List<ErrorCode>();
        AdmissionRequest request = everythingWrong;
        answers.Add(Answer(_envelopes, request));
        request = request with { SenderPartnerUtf8 = Utf8("alpha") };
        answers.Add(Answer(_envelopes, request));
        request = request with { MessageIdLength = 16 };
        answers.Add(Answer(_envelopes, request));
        request = request with { RecipientUserEmpty = false };
        answers.Add(Answer(_envelopes, request));
        request = request with { Recipient = _beta };
        answers.Add(Answer(_envelopes, request));
        request = request with { ContentKind = (int)ContentKind.Text };
        answers.Add(Answer(_envelopes, request));
        request = request with { RecipientFrameBytes = 100 };
        answers.Add(Answer(_envelopes, request));
        request = request with { ExpiresAtMs = 0 };
        answers.Add(Answer(_envelopes, request));
        request = request with { StorageFull = false };
        answers.Add(Answer(_envelopes, request));

        Assert.Equal(
            [
                ErrorCode.SenderMismatch, ErrorCode.InvalidEnvelope, ErrorCode.InvalidEnvelope, ErrorCode.UnknownRecipientPartner,
                ErrorCode.ContentKindUnsupported, ErrorCode.FrameTooLarge, ErrorCode.Expired, ErrorCode.StorageFull, ErrorCode.Unspecified,
            ],
            answers);
    }

    [Fact]
    public void In_the_MediaOpen_pipeline_the_first_refusal_answers_in_the_order_sender_recipient_kind_frame_digest_size_expiry()
    {
        AdmissionRequest request = MediaOpen() with
        {
            SenderPartnerText = "gamma",
            Recipient = null,
            ContentKind = (int)ContentKind.Image,
            RecipientFrameBytes = BetaMaxFrameBytes + 1,
            Sha256Length = 20,
            DeclaredMediaBytes = 2000,
            SenderMediaLimitBytes = 1000,
            ExpiresAtMs = Now,
            StorageFull = true, // not a MediaOpen rule: the spool answers STORAGE_FULL itself
        };
        var answers = new List<ErrorCode> { Answer(_mediaOpens, request) };
        request = request with { SenderPartnerText = "alpha" };
        answers.Add(Answer(_mediaOpens, request));
        request = request with { Recipient = _beta };
        answers.Add(Answer(_mediaOpens, request));
        request = request with { ContentKind = (int)ContentKind.Text };
        answers.Add(Answer(_mediaOpens, request));
        request = request with { RecipientFrameBytes = 200 };
        answers.Add(Answer(_mediaOpens, request));
        request = request with { Sha256Length = 32 };
        answers.Add(Answer(_mediaOpens, request));
        request = request with { DeclaredMediaBytes = 1000 };
        answers.Add(Answer(_mediaOpens, request));
        request = request with { ExpiresAtMs = Now + 60_000 };
        answers.Add(Answer(_mediaOpens, request));

        Assert.Equal(
            [
                ErrorCode.SenderMismatch, ErrorCode.UnknownRecipientPartner, ErrorCode.ContentKindUnsupported, ErrorCode.FrameTooLarge,
                ErrorCode.MalformedFrame, ErrorCode.MediaTooLarge, ErrorCode.Expired, ErrorCode.Unspecified,
            ],
            answers);
    }

    [Fact]
    public void Both_paths_share_one_instance_type_per_rule_and_no_rule_appears_twice_in_a_path()
    {
        Type[] envelopeRules = [.. _envelopes.Rules.Select(r => r.GetType())];
        Type[] mediaRules = [.. _mediaOpens.Rules.Select(r => r.GetType())];

        Assert.Equal(envelopeRules.Length, envelopeRules.Distinct().Count());
        Assert.Equal(mediaRules.Length, mediaRules.Distinct().Count());
        Assert.Equal(
            [typeof(SenderRule), typeof(SuspensionRule), typeof(RecipientRule), typeof(RelayKindsRule), typeof(ContentKindRule), typeof(RecipientFrameLimitRule), typeof(ExpiryRule), typeof(OptInRule), typeof(RateLimitRule)],
            envelopeRules.Intersect(mediaRules));
    }

    [Fact]
    public void Admitting_an_envelope_allocates_nothing()
    {
        CountAllocatingAdmissions(2000); // warm-up: JIT, tiering

        int allocating = CountAllocatingAdmissions(10_000);

        // Counted rather than summed: when the runtime retires this thread's allocation context (a GC, or a suspension
        // for a test running in parallel), its unused rest shows up once as "allocated"; an allocation per admission
        // would show up in every one of the 10,000.
        Assert.InRange(allocating, 0, 5);
    }

    private int CountAllocatingAdmissions(int count)
    {
        int allocating = 0;
        for (int i = 0; i < count; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            bool admitted = Admit();
            if (GC.GetAllocatedBytesForCurrentThread() != before)
            {
                allocating++;
            }

            Assert.True(admitted);
        }

        return allocating;
    }

    private bool Admit()
    {
        AdmissionRequest request = Envelope();
        return _envelopes.Admit(request, out _) && _envelopes.AdmitNew(request, out _);
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>An envelope from alpha to beta that every rule admits.</summary>
    private AdmissionRequest Envelope() => new()
    {
        Subject = AdmissionSubject.Envelope,
        Sender = _alpha,
        SenderPartnerUtf8 = AlphaUtf8,
        MessageIdLength = 16,
        Recipient = _beta,
        ContentKind = (int)ContentKind.Text,
        RecipientFrameBytes = 1000,
        NowMs = Now,
    };

    /// <summary>A MediaOpen from alpha to beta that every rule admits.</summary>
    private AdmissionRequest MediaOpen() => new()
    {
        Subject = AdmissionSubject.MediaOpen,
        Sender = _alpha,
        SenderPartnerText = "alpha",
        Recipient = _beta,
        RecipientPartnerText = "beta",
        ContentKind = (int)ContentKind.Text,
        RecipientFrameBytes = 200,
        Sha256Length = 32,
        DeclaredMediaBytes = 1000,
        SenderMediaLimitBytes = 1_000_000,
        NowMs = Now,
    };

    private static ReadOnlySequence<byte> Utf8(string value) => new(Encoding.UTF8.GetBytes(value));

    private static ErrorCode Answer(AdmissionPipeline pipeline, in AdmissionRequest request) =>
        !pipeline.Admit(request, out AdmissionRefusal refusal) || !pipeline.AdmitNew(request, out refusal) ? refusal.Code : ErrorCode.Unspecified;

    private static void AssertRefused(IAdmissionRule rule, in AdmissionRequest request, ErrorCode code, string detail, uint retryAfterMs = 0)
    {
        Assert.False(rule.Check(request, out AdmissionRefusal refusal));
        Assert.Equal(new AdmissionRefusal(code, detail, retryAfterMs), refusal);
    }

    private sealed class DeclaringConsumer(ReceiveDeclaration declared) : IDeliveryConsumer
    {
        public ReceiveDeclaration Declared => declared;

        public void OnDeliveriesAvailable()
        {
        }
    }
}
