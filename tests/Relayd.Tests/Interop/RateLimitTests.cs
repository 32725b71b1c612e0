using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// The rate limits end to end over real TLS: a relay in this process with its limiter in the envelope pipeline, partners
/// through the client library. A refusal is RATE_LIMITED with the retry-after of the bucket that refused; honouring it
/// succeeds; what is refused is not stored; other users and partners are unaffected.
/// </summary>
public sealed class RateLimitTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public RateLimitTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_sender_user_over_its_rate_gets_RATE_LIMITED_and_its_retry_after_when_honoured_succeeds_while_other_users_pass()
    {
        await using TestRelay relay = Start(o =>
        {
            o.Interop.UserEnvelopesPerSecond = 5;
            o.Interop.UserEnvelopeBurst = 5;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        for (int i = 0; i < 5; i++)
        {
            await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta", fromUser: "fast-user"));
        }

        Relayd.Storage.StorageMetrics before = relay.Server.StorageMetrics;
        Envelope over = Envelopes.New("alpha", "beta", fromUser: "fast-user");
        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendAsync(over));

        Assert.Equal(ErrorCode.RateLimited, refused.Code);
        Assert.Equal("sender user over 5 envelopes/s (burst 5) of partner 'alpha'", refused.Detail);
        Assert.InRange(refused.RetryAfterMs, 1u, 200u); // one token: 200 ms, less what has refilled since

        // Nothing of it stored: the log and beta's backlog are as they were.
        Relayd.Storage.StorageMetrics after = relay.Server.StorageMetrics;
        Assert.Equal(before.LogBytes, after.LogBytes);
        Assert.Equal(5, Backlog(after, "beta"));

        // Another user of the same partner is not limited by it.
        await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta", fromUser: "slow-user"));

        // The protocol's own wait: the retry-after the relay gave.
        await Task.Delay(TimeSpan.FromMilliseconds(refused.RetryAfterMs), TestContext.Current.CancellationToken);
        await Envelopes.AcceptedAsync(alpha, over);
        Assert.Equal(7, Backlog(relay.Server.StorageMetrics, "beta"));
    }

    [Fact]
    public async Task The_bench_profile_lets_one_sender_user_start_thousands_of_conversations_as_the_load_generator_does()
    {
        // relayd dev --rate-limits bench: every limit on, at rates the load cannot reach. The load generator sends from
        // one user per partner to --users recipients; at the 200/hour default a 10,000-user run was nearly all
        // RATE_LIMITED (2,324 msg/s, 215,182 refused in 10 s) and a 1,000,000-user run entirely.
        await using TestRelay relay = Start(o => o.Interop.UseBenchmarkRates());
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        List<Task<Ack>> sends = [];
        for (int i = 0; i < 1000; i++)
        {
            sends.Add(alpha.SendAsync(Envelopes.New("alpha", "beta", toUser: $"user-{i}", fromUser: "loadgen", ciphertext: new byte[32])));
        }

        foreach (Task<Ack> send in sends)
        {
            await send.Within(60); // a refusal throws
        }

        Assert.Equal(1000, Backlog(relay.Server.StorageMetrics, "beta"));
    }

    [Fact]
    public async Task A_first_contact_flood_to_10000_recipients_is_cut_at_the_configured_number_while_known_recipients_and_other_users_pass()
    {
        await using TestRelay relay = Start(o =>
        {
            o.Interop.NewConversationsPerHour = 100;
            o.Interop.UserEnvelopesPerSecond = 0;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        int accepted = 0;
        var refusals = new List<RelayException>();
        var flood = System.Diagnostics.Stopwatch.StartNew();
        for (int batch = 0; batch < 10; batch++)
        {
            List<Task<Ack>> sends = [];
            for (int i = 0; i < 1000; i++)
            {
                sends.Add(alpha.SendAsync(Envelopes.New("alpha", "beta", toUser: $"stranger-{(batch * 1000) + i}", fromUser: "flooder", ciphertext: new byte[32])));
            }

            foreach (Task<Ack> send in sends)
            {
                try
                {
                    await send.Within(60);
                    accepted++;
                }
                catch (RelayException ex)
                {
                    refusals.Add(ex);
                }
            }
        }

        uint elapsedMs = (uint)flood.ElapsedMilliseconds + 1;

        // 100 new conversations; a seen-pairs false positive (about 0.1% at this load) may let one or two more through.
        Assert.InRange(accepted, 100, 110);
        Assert.Equal(10_000 - accepted, refusals.Count);
        Assert.All(refusals, r =>
        {
            Assert.Equal(ErrorCode.RateLimited, r.Code);
            Assert.Equal("sender user over 100 new conversations/hour of partner 'alpha'", r.Detail);
            Assert.InRange(r.RetryAfterMs, 36_000u - elapsedMs, 36_000u); // one token (3600 s / 100), less what has refilled since
        });
        Assert.Equal(accepted, Backlog(relay.Server.StorageMetrics, "beta"));

        // An already-written-to recipient still gets messages from the flooder; another user starts conversations freely.
        await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta", toUser: "stranger-0", fromUser: "flooder"));
        for (int i = 0; i < 20; i++)
        {
            await Envelopes.AcceptedAsync(alpha, Envelopes.New("alpha", "beta", toUser: $"stranger-{9000 + i}", fromUser: "neighbour"));
        }
    }

    [Fact]
    public async Task A_partner_over_its_envelopes_or_bytes_per_second_is_refused_while_another_partner_passes()
    {
        await using TestRelay relay = Start(o =>
        {
            o.Interop.UserEnvelopesPerSecond = 0;
            o.Partners[0].PartnerEnvelopesPerSecond = 2;    // alpha: burst 2, one more each 500 ms
            o.Partners[2].PartnerBytesPerSecond = 10_000;   // gamma: burst 10,000 bytes, 10 per ms
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        (int alphaAccepted, List<RelayException> alphaRefused) = await SendAllAsync(alpha, "alpha", 6, ciphertextBytes: 32);
        Assert.InRange(alphaAccepted, 2, 2 + (int)(clock.ElapsedMilliseconds / 500)); // the burst, and one per 500 ms the sends took
        Assert.NotEmpty(alphaRefused);
        Assert.All(alphaRefused, r =>
        {
            Assert.Equal(ErrorCode.RateLimited, r.Code);
            Assert.Equal("partner 'alpha' over its 2 envelopes/s", r.Detail);
            Assert.InRange(r.RetryAfterMs, 1u, 500u);
        });

        clock.Restart();
        (int gammaAccepted, List<RelayException> gammaRefused) = await SendAllAsync(gamma, "gamma", 5, ciphertextBytes: 4000);
        Assert.InRange(gammaAccepted, 2, 2 + (int)(clock.ElapsedMilliseconds / 400)); // two frames of about 4.1 KB fit in 10,000 bytes; one more per ~410 ms
        Assert.NotEmpty(gammaRefused);
        Assert.All(gammaRefused, r =>
        {
            Assert.Equal(ErrorCode.RateLimited, r.Code);
            Assert.Equal("partner 'gamma' over its 10000 bytes/s", r.Detail);
            Assert.InRange(r.RetryAfterMs, 1u, 1000u);
        });
        Assert.Equal(alphaAccepted + gammaAccepted, Backlog(relay.Server.StorageMetrics, "beta"));

        // beta has the [interop] defaults: its 20 envelopes from 20 users all pass.
        await using RelayClient beta = await relay.ConnectAsync("beta");
        (int betaAccepted, _) = await SendAllAsync(beta, "beta", 20, ciphertextBytes: 4000, to: "alpha");
        Assert.Equal(20, betaAccepted);
    }

    private static async Task<(int Accepted, List<RelayException> Refused)> SendAllAsync(RelayClient client, string from, int count, int ciphertextBytes, string to = "beta")
    {
        List<Task<Ack>> sends = [];
        for (int i = 0; i < count; i++)
        {
            sends.Add(client.SendAsync(Envelopes.New(from, to, fromUser: $"user-{i}", ciphertext: new byte[ciphertextBytes])));
        }

        int accepted = 0;
        var refused = new List<RelayException>();
        foreach (Task<Ack> send in sends)
        {
            try
            {
                await send.Within();
                accepted++;
            }
            catch (RelayException ex)
            {
                refused.Add(ex);
            }
        }

        return (accepted, refused);
    }

    private static long Backlog(Relayd.Storage.StorageMetrics metrics, string partner) =>
        metrics.Backlog.Where(b => b.Partner == partner).Sum(b => b.InMemory + b.InLogOnly);

    private TestRelay Start(Action<RelayOptions> configure) => TestRelay.Start(_pki, o =>
    {
        o.Interop.RateLimits = true;
        configure(o);
    });
}
