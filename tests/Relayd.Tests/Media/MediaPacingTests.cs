using System.Security.Cryptography;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Functional;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Media;

/// <summary>
/// Credit follows the slowest link: while a recipient takes a blob as it arrives (cut-through), the sender gets credit
/// only as the relay writes the chunks to the recipient, so it runs at most a window ahead of it; a recipient that
/// stops reading altogether does not hold the sender beyond half the idle timeout.
/// </summary>
public sealed class MediaPacingTests : IClassFixture<PkiFixture>
{
    private const long MiB = 1024 * 1024;
    private readonly TestPki _pki;

    public MediaPacingTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_fast_sender_waits_for_a_connected_recipient_that_is_not_reading_and_continues_when_it_reads()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.WindowBytes = (int)MiB);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new PatternStream(512 * MiB, seed: 21);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        long sent = 0;
        blob.BeforeRead = position => Volatile.Write(ref sent, position);

        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(20);

        // beta reads nothing: the sender may fill the window and the socket and client buffers on the way, then stops.
        long previous = -1;
        long current = Volatile.Read(ref sent);
        for (int i = 0; i < 40 && current != previous; i++)
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
            (previous, current) = (current, Volatile.Read(ref sent));
        }

        Assert.Equal(previous, current);
        Assert.False(upload.IsCompleted);
        // Loopback buffers (relay send buffer, beta's receive buffer up to tcp_rmem's 32 MiB, the client's 4 MiB pipe)
        // plus the 1 MiB window: far from the 512 MiB the disk would have taken without pacing.
        Assert.InRange(current, 1 * MiB, 64 * MiB);
        TestContext.Current.TestOutputHelper?.WriteLine($"sender stopped at {current / MiB} MiB while beta did not read");

        using IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = await MediaBlobs.HashAsync(incoming.Content, hash).Within(120);
        await upload.Within(60);
        Assert.Equal((long)open.TotalSize, received);
        Assert.Equal(open.Sha256.ToByteArray(), hash.GetHashAndReset());
    }

    [Fact]
    public async Task A_recipient_that_stops_reading_does_not_hold_the_sender_beyond_half_the_idle_timeout()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Media.WindowBytes = (int)MiB;
            o.Media.TransferIdleTimeout = TimeSpan.FromSeconds(2);
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new PatternStream(256 * MiB, seed: 22);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;

        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(20);

        // beta never reads during the upload: after 1 s without progress the rest goes to the spool at disk pace.
        MediaComplete complete = await upload.Within(60);
        Assert.Equal(open.TotalSize, complete.TotalSize);
        Assert.Contains(relay.Logs, line => line.Contains("stopped reading a media transfer", StringComparison.Ordinal));

        // And beta still gets all of it, from the same delivery, continued from the spool file.
        using IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = await MediaBlobs.HashAsync(incoming.Content, hash).Within(120);
        Assert.Equal((long)open.TotalSize, received);
        Assert.Equal(open.Sha256.ToByteArray(), hash.GetHashAndReset());
    }
}
