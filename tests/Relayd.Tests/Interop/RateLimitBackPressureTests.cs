using Microsoft.Extensions.Time.Testing;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// An envelope the log was too busy to take is taken once there is room, and counts against its sender's rate limits
/// once: back-pressure from a slow disk does not turn into RATE_LIMITED refusals.
/// </summary>
public sealed class RateLimitBackPressureTests : IClassFixture<PkiFixture>
{
    private const int Budget = 40; // envelopes the partner bucket holds; the clock stands still, so it never refills
    private readonly TestPki _pki;

    public RateLimitBackPressureTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Envelopes_held_back_by_a_full_log_are_charged_once_and_all_accepted()
    {
        var disk = new HeldDisk();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using TestRelay relay = TestRelay.Start(_pki, clock, o =>
        {
            o.Storage.FileSync = disk;
            o.Storage.SegmentBytes = 1024 * 1024; // 1 MiB write buffers: a few envelopes fill them while the disk is held
            o.Interop.RateLimits = true;
            o.Interop.PartnerEnvelopesPerSecond = Budget;
            o.Interop.PartnerBytesPerSecond = 0;
            o.Interop.UserEnvelopesPerSecond = 0;
            o.Interop.NewConversationsPerHour = 0;
        });
        using var metrics = new RecordedMetrics(relay.Server.Metrics.Meter);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");

        // The first commit hangs in fdatasync; what follows fills the buffers until the log pushes back.
        disk.Hold();
        byte[] ciphertext = Envelopes.RandomCiphertext(96 * 1024);
        Task<Ack>[] sends = [.. Enumerable.Range(0, Budget).Select(_ => alpha.SendAsync(Envelopes.New("alpha", "beta", ciphertext: ciphertext)))];
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (metrics.Sum("relayd.wal.full_waits") == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }

        long fullWaits = metrics.Sum("relayd.wal.full_waits");
        disk.Release();
        Ack[] acks = await Task.WhenAll(sends).Within(60);

        Assert.True(fullWaits > 0, "the log never pushed back: the test did not test anything");
        Assert.Equal(Budget, acks.Length);
        Assert.All(acks, ack => Assert.False(ack.Duplicate));
    }
}
