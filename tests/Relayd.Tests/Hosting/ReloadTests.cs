using System.Net;
using System.Security.Cryptography.X509Certificates;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Security;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// SIGHUP (systemctl reload) on the real daemon: the file is read and checked again, and only a valid one is applied.
/// [tls] and [[partners]] change at run time; sessions stay up except those of a partner no longer approved.
/// </summary>
public sealed class ReloadTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ReloadTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_reload_rotates_the_certificate_and_changes_the_partners_while_other_sessions_keep_delivering()
    {
        using var notify = new NotifySocket();
        await using var relay = new RelaydProcess(_pki);
        relay.Environment["NOTIFY_SOCKET"] = notify.Path;
        await relay.StartAsync();
        int ready = await notify.WaitForLineAsync("READY=1");
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
        await beta.SendHelloAsync();
        Assert.NotNull((await beta.ReadFrameAsync())?.Welcome);

        // The new file: beta removed, delta approved, a new server certificate from the same CA.
        DateTimeOffset now = DateTimeOffset.UtcNow;
        using X509Certificate2 rotated = CertificateFactory.IssueServer(_pki.Ca, ["localhost"], [IPAddress.Loopback], now.AddDays(-1), now.AddYears(1));
        string rotatedCert = Path.Combine(_pki.Directory, $"rotated-{relay.Port}.crt");
        string rotatedKey = Path.Combine(_pki.Directory, $"rotated-{relay.Port}.key");
        CertificateFactory.WritePem(rotated, rotatedCert, rotatedKey);
        string config = File.ReadAllText(relay.ConfigPath)
            .Replace("id = \"beta\"", "id = \"delta\"", StringComparison.Ordinal)
            .Replace(_pki.ServerCertPath, rotatedCert, StringComparison.Ordinal)
            .Replace(_pki.ServerKeyPath, rotatedKey, StringComparison.Ordinal);
        File.WriteAllText(relay.ConfigPath, config);

        relay.SendSighup();
        int reloading = await notify.WaitForLineAsync("RELOADING=1", from: ready + 1);
        Assert.Contains(notify.Received[reloading].Split('\n'), line => line.StartsWith("MONOTONIC_USEC=", StringComparison.Ordinal) && long.Parse(line["MONOTONIC_USEC=".Length..], System.Globalization.CultureInfo.InvariantCulture) > 0);
        await notify.WaitForLineAsync("READY=1", from: reloading + 1);
        await relay.WaitForOutputAsync("(SIGHUP): partners +delta -beta; certificate and partner trust reloaded");

        // beta: GoAway with the code that says why, and a new connection refused.
        Frame? goAway;
        while ((goAway = await beta.ReadFrameAsync()) is { GoAway: null })
        {
        }

        Assert.Equal(ErrorCode.PartnerNotApproved, goAway?.GoAway?.Code);
        await beta.SendAsync(new Frame { GoAway = new GoAway() }); // beta closes, as a partner does after GoAway
        await relay.WaitForOutputAsync("Partner beta is no longer approved (configuration reloaded): GoAway PARTNER_NOT_APPROVED sent to 1 sessions");
        await using (RawPartnerConnection again = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca))
        {
            await again.SendHelloAsync();
            List<Frame> refused = await again.ReadUntilClosedAsync();
            Assert.Contains(refused, f => f.Error?.Code == ErrorCode.PartnerNotApproved);
        }

        // A new connection gets the rotated certificate; delta, approved now, sends to alpha, whose session stayed up.
        await using (RawPartnerConnection probe = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("gamma"), _pki.Ca))
        {
            Assert.Equal(rotated.Thumbprint, Assert.IsType<X509Certificate2>(probe.Stream.RemoteCertificate, exactMatch: false).Thumbprint);
        }

        await using RelayClient delta = await relay.ConnectAsync("delta");
        Envelope envelope = Envelopes.New("delta", "alpha");
        await delta.SendAsync(envelope).Within();
        Deliver? delivered = null;
        await alpha.ConsumeAsync(d => delivered = d, limit: 1, TestContext.Current.CancellationToken).Within();
        Assert.Equal(envelope.MessageId, delivered?.Envelope.MessageId);
        await alpha.SendAsync(Envelopes.New("alpha", "gamma")).Within();
    }

    [Fact]
    public async Task A_config_that_fails_validation_is_not_applied_and_names_key_and_line()
    {
        using var notify = new NotifySocket();
        await using var relay = new RelaydProcess(_pki);
        relay.Environment["NOTIFY_SOCKET"] = notify.Path;
        await relay.StartAsync();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        string original = File.ReadAllText(relay.ConfigPath);

        // A bad value: the reload is refused with the key and its line; beta stays approved.
        string broken = original.Replace("id = \"beta\"", "id = \"beta\"\nmax_connections = \"many\"", StringComparison.Ordinal);
        int line = broken.Split('\n').ToList().FindIndex(l => l.StartsWith("max_connections", StringComparison.Ordinal)) + 1;
        File.WriteAllText(relay.ConfigPath, broken);
        relay.SendSighup();
        await relay.WaitForOutputAsync($"{relay.ConfigPath}:{line}: partners[1].max_connections: expected an integer");
        await relay.WaitForOutputAsync("Configuration reload (SIGHUP) refused, the running configuration stays");
        await notify.WaitForAsync(d => d.StartsWith("READY=1\nSTATUS=reload refused", StringComparison.Ordinal), "READY=1 with the refusal");

        // A key that needs a restart: refused as a whole, by name, even with a partner change beside it.
        string restartNeeded = original
            .Replace("shutdown_timeout_ms = 3000", "shutdown_timeout_ms = 4000", StringComparison.Ordinal)
            .Replace("id = \"gamma\"", "id = \"delta\"", StringComparison.Ordinal);
        File.WriteAllText(relay.ConfigPath, restartNeeded);
        relay.SendSighup();
        await relay.WaitForOutputAsync("limits.shutdown_timeout_ms: cannot change on reload (in force: 3000, in the file: 4000); restart relayd to apply it");

        // The relay runs on the configuration it had: beta and gamma still approved, delta not.
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        await gamma.SendAsync(Envelopes.New("gamma", "alpha")).Within();
        RelayException refused = await Assert.ThrowsAsync<RelayException>(() => relay.ConnectAsync("delta"));
        Assert.Equal(ErrorCode.PartnerNotApproved, refused.Code);
    }
}
