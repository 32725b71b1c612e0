using Relayd.Hosting;
using Relayd.Interop.RateLimits;
using Relayd.Routing;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// The rate limits' keys: [interop] defaults and a partner's own, range checks with the key named, and a reload that
/// gives a kept partner its new limits (same PartnerInfo, same buckets).
/// </summary>
public sealed class RateLimitConfigTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public RateLimitConfigTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public void A_partners_own_keys_override_the_interop_ones_and_the_rest_fall_back()
    {
        RelayOptions options = RelayConfigLoader.Load(_pki.WriteMinimalConfig("""
            [interop]
            user_envelopes_per_second = 7
            new_conversations_per_hour = 0
            tighten_reported_senders = true
            tighten_seconds = 600
            """, partnerExtra: "user_envelopes_per_second = 3\npartner_bytes_per_second = 0"));

        RateLimitSettings alpha = new PartnerDirectory(options).Partners[0].RateLimits;
        Assert.Equal(new RateLimitSettings(50_000, 0, 3, 100, 0, 60), alpha);
        Assert.Equal(7, options.Interop.UserEnvelopesPerSecond);
        Assert.True(options.Interop.TightenReportedSenders);
        Assert.Equal(TimeSpan.FromMinutes(10), options.Interop.TightenDuration);
    }

    [Theory]
    [InlineData("interop", "user_envelope_burst", "0")]
    [InlineData("interop", "partner_envelopes_per_second", "-1")]
    [InlineData("interop", "rate_limit_tracked_users", "10")]
    [InlineData("interop", "seen_pairs_per_hour", "100")]
    [InlineData("interop", "tighten_seconds", "0")]
    public void A_value_out_of_range_is_refused_with_its_key(string table, string key, string value)
    {
        IReadOnlyList<ConfigError> errors = RelayConfigLoader.Check(_pki.WriteMinimalConfig($"""
            [{table}]
            {key} = {value}
            """));

        ConfigError error = Assert.Single(errors);
        Assert.Equal($"{table}.{key}", error.Key);
        Assert.Contains("must be between", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_partners_limit_out_of_range_is_refused_with_its_key()
    {
        ConfigError error = Assert.Single(RelayConfigLoader.Check(_pki.WriteMinimalConfig("", partnerExtra: "new_conversations_per_hour = 2000000000")));
        Assert.Equal("partners[0].new_conversations_per_hour", error.Key);
        Assert.Contains("must be between 0 and 1000000000", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_reload_gives_a_kept_partner_its_new_limits_and_the_limiter_applies_them_at_once()
    {
        var options = new RelayOptions();
        options.Partners.Add(new PartnerOptions { Id = "alpha" });
        options.Partners.Add(new PartnerOptions { Id = "beta" });
        var directory = new PartnerDirectory(options);
        PartnerInfo alpha = directory.Find("alpha")!;
        var limiter = new RateLimiter(options.Interop, new Microsoft.Extensions.Time.Testing.FakeTimeProvider());

        var reloaded = new RelayOptions();
        reloaded.Partners.Add(new PartnerOptions { Id = "alpha", UserEnvelopesPerSecond = 1, UserEnvelopeBurst = 1 });
        reloaded.Partners.Add(new PartnerOptions { Id = "beta" });
        PartnerChanges changes = directory.Replace(reloaded);

        Assert.Same(alpha, directory.Find("alpha"));
        Assert.Equal("alpha: user_envelopes_per_second 20 -> 1, user_envelope_burst 100 -> 1", changes.ToString());
        var request = new Relayd.Admission.AdmissionRequest
        {
            Subject = Relayd.Admission.AdmissionSubject.Envelope,
            Sender = alpha,
            Recipient = directory.Find("beta"),
            SenderUser = new System.Buffers.ReadOnlySequence<byte>("u"u8.ToArray()),
            RecipientUser = new System.Buffers.ReadOnlySequence<byte>("r"u8.ToArray()),
            Bytes = 10,
        };
        Assert.True(limiter.TryTake(request, out _));
        Assert.False(limiter.TryTake(request, out Relayd.Admission.AdmissionRefusal refusal));
        Assert.Equal("sender user over 1 envelopes/s (burst 1) of partner 'alpha'", refusal.Detail);
    }
}
