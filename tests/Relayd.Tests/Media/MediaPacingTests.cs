using System.Security.Cryptography;
using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.V1;
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
        using var blob = new BlobStream(512 * MiB, seed: 21);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        long sent = 0;
        blob.BeforeRead = position => Volatile.Write(ref sent, position);

        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(20);

        // beta reads nothing: the sender may fill the window and the socket and client buffers on the way, then stops.
        long current = await StalledPositionAsync(() => Volatile.Read(ref sent));
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
    public async Task A_recipient_that_connects_mid_upload_is_sent_the_spooled_part_and_then_paces_the_sender()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.WindowBytes = (int)MiB);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(512 * MiB, seed: 23);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        long sent = 0;
        var go = new ManualResetEventSlim();
        blob.BeforeRead = position =>
        {
            Volatile.Write(ref sent, position);
            if (position >= 16 * MiB)
            {
                go.Wait(TimeSpan.FromSeconds(60));
            }
        };

        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        await WaitUntilAsync(() => Volatile.Read(ref sent) >= 16 * MiB);

        // beta connects late: it is sent the 16 MiB the spool holds, catches up, and joins the cut-through.
        await using RelayClient beta = await relay.ConnectAsync("beta");
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(20);
        using IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] first = new byte[16 * MiB];
        await incoming.Content.ReadExactlyAsync(first, TestContext.Current.CancellationToken).AsTask().Within(30);
        hash.AppendData(first);

        // Now beta stops reading and alpha goes on: from here on beta's progress paces alpha.
        go.Set();
        long stalledAt = await StalledPositionAsync(() => Volatile.Read(ref sent));
        Assert.False(upload.IsCompleted);
        Assert.InRange(stalledAt, 16 * MiB, 80 * MiB);

        long received = first.Length + await MediaBlobs.HashAsync(incoming.Content, hash).Within(120);
        await upload.Within(60);
        Assert.Equal((long)open.TotalSize, received);
        Assert.Equal(open.Sha256.ToByteArray(), hash.GetHashAndReset());
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (int i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        Assert.True(condition());
    }

    /// <summary>Samples a position every 250 ms until it stops moving (at most 10 s); returns where it stopped.</summary>
    private static async Task<long> StalledPositionAsync(Func<long> position)
    {
        long previous = -1;
        long current = position();
        for (int i = 0; i < 40 && current != previous; i++)
        {
            await Task.Delay(250, TestContext.Current.CancellationToken);
            (previous, current) = (current, position());
        }

        Assert.Equal(previous, current);
        return current;
    }

    [Fact]
    public async Task A_sender_held_back_by_a_slow_but_reading_recipient_is_not_dropped_as_idle()
    {
        // A 32 MiB window refills every 16 MiB the recipient takes: at about 6 MiB/s the sender waits for credit
        // longer than the 2 s idle timeout each time, while the recipient makes progress every fraction of a second.
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Media.WindowBytes = (int)(32 * MiB);
            o.Media.TransferIdleTimeout = TimeSpan.FromSeconds(2);
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new BlobStream(80 * MiB, seed: 24);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;

        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(20);
        using IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[384 * 1024];
        long received = 0;
        int read;
        while ((read = await incoming.Content.ReadAsync(buffer, TestContext.Current.CancellationToken)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            received += read;
            await Task.Delay(60, TestContext.Current.CancellationToken);
        }

        MediaComplete complete = await upload.Within(60); // throws MEDIA_IDLE_TIMEOUT if the relay dropped it
        Assert.Equal(open.TotalSize, complete.TotalSize);
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
        using var blob = new BlobStream(256 * MiB, seed: 22);
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
