using System.Globalization;
using System.Text.RegularExpressions;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;
using static Relayd.Tests.Interop.ConsentUsers;

namespace Relayd.Tests.Interop;

/// <summary>
/// Consent survives kill -9 of the real daemon: acknowledged grants and revokes are back after the restart, from the
/// consent log alone and from its snapshot plus the log after it.
/// </summary>
public sealed class ConsentDurabilityTests : IClassFixture<PkiFixture>
{
    private const string OptIn = """
        [interop]
        require_opt_in = true
        """;

    private readonly TestPki _pki;

    public ConsentDurabilityTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Acknowledged_grants_and_revokes_survive_SIGKILL_right_after_the_ConsentAck()
    {
        await using var relay = new RelaydProcess(_pki, OptIn);
        await relay.StartAsync();
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        {
            await GrantAsync(alpha, "alice");
            await GrantAsync(beta, "bob", "bert");
            await RevokeAsync(beta, "bert");
            await relay.KillAsync(); // right after the last ConsentAck: nothing else had time to reach the disk
        }

        await relay.StartAsync();
        await using RelayClient alphaAgain = await relay.ConnectAsync("alpha");
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(alphaAgain, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alphaAgain, Envelopes.New("alpha", "beta", toUser: "bert", fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(alphaAgain, Envelopes.New("alpha", "beta", toUser: "bob", fromUser: "mallory")));
    }

    [Fact]
    public async Task Consent_comes_back_from_the_snapshot_and_the_log_after_it_and_old_segments_are_deleted()
    {
        await using var relay = new RelaydProcess(_pki, OptIn);
        await relay.StartAsync();
        const int batches = 50; // 50 × 1,000 users of 200 bytes: about 11 MiB of log, past the 8 MiB snapshot point
        string User(int batch, int i) => $"{batch:D3}-{i:D4}-" + new string('u', 191);
        await using (RelayClient beta = await relay.ConnectAsync("beta"))
        await using (RelayClient alpha = await relay.ConnectAsync("alpha"))
        {
            await GrantAsync(alpha, "alice");
            for (int batch = 0; batch < batches; batch++)
            {
                await beta.UpdateConsentAsync(Enumerable.Range(0, 1000).Select(i => Grant(User(batch, i))), TestContext.Current.CancellationToken).Within(30);
            }

            await RevokeAsync(beta, User(0, 1), User(batches - 1, 1));
            string consentDir = Path.Combine(relay.WalDirectory, "consent");
            await relay.WaitForOutputAsync("Consent snapshot written");
            Assert.True(File.Exists(Path.Combine(consentDir, "consent.snapshot")));
            Assert.DoesNotContain(Path.Combine(consentDir, "wal-0000000000000000.log"), Directory.GetFiles(consentDir));
            await relay.KillAsync();
        }

        await relay.StartAsync();
        await relay.WaitForOutputAsync("from the snapshot");
        Match restored = Regex.Match(relay.Output, @"\((\d+) from the snapshot, (\d+) log records replayed\)");
        Assert.True(restored.Success, relay.Output);
        Assert.True(int.Parse(restored.Groups[1].Value, CultureInfo.InvariantCulture) > 0, restored.Value);
        await using RelayClient again = await relay.ConnectAsync("alpha");
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(again, Envelopes.New("alpha", "beta", toUser: User(0, 0), fromUser: "alice")));
        Assert.Equal(ErrorCode.Unspecified, await OutcomeAsync(again, Envelopes.New("alpha", "beta", toUser: User(batches - 1, 999), fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(again, Envelopes.New("alpha", "beta", toUser: User(0, 1), fromUser: "alice")));
        Assert.Equal(ErrorCode.NotOptedIn, await OutcomeAsync(again, Envelopes.New("alpha", "beta", toUser: User(batches - 1, 1), fromUser: "alice")));
    }
}
