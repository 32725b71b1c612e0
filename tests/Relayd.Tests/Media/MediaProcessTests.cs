using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Media;

/// <summary>Media through the real daemon process: bounded memory for a 1 GiB blob to a connected or an offline recipient, and spooled blobs survive a restart.</summary>
[Collection(nameof(MemorySensitiveCollection))]
public sealed class MediaProcessTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    private const long Size = 1024L * 1024 * 1024;

    public MediaProcessTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_1_GiB_blob_to_a_connected_recipient_matches_its_digest_and_the_relay_RSS_grows_by_less_than_64_MiB()
    {
        string spool = Path.Combine(_pki.Directory, "spool-" + Guid.NewGuid().ToString("N"));
        await using var relay = new RelaydProcess(_pki, $"[media]\nspool_dir = \"{spool}\"\n");
        await relay.StartAsync();
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        // Warm the relay's media path with a small blob first, so the baseline includes its one-off costs (JIT, pools).
        using (var warm = new BlobStream(8 * 1024 * 1024, seed: 20))
        {
            MediaOpen warmOpen = MediaBlobs.Open("alpha", "beta", warm);
            warm.Position = 0;
            Task<(MediaOpen, long, byte[])> warmReceived = MediaBlobs.ReceiveAsync(beta);
            await alpha.SendMediaAsync(warmOpen, warm).Within(60);
            await warmReceived;
        }

        using var blob = new BlobStream(Size, seed: 21);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        long growth;
        (MediaOpen Open, long Length, byte[] Sha256) received;
        await using (RssGrowth rss = RssGrowth.Start(relay.Pid))
        {
            Task<(MediaOpen Open, long Length, byte[] Sha256)> receiving = MediaBlobs.ReceiveAsync(beta, seconds: 300);
            await alpha.SendMediaAsync(open, blob).Within(300);
            received = await receiving;
            growth = rss.GrowthBytes("connected recipient, 1 GiB through the relay");
        }

        Assert.Equal(Size, received.Length);
        Assert.Equal(open.Sha256.ToByteArray(), received.Sha256);
        Assert.InRange(growth, long.MinValue, 64L * 1024 * 1024);
    }

    [Fact]
    public async Task A_1_GiB_blob_spooled_for_an_offline_recipient_survives_a_relay_crash_and_restart_and_arrives_intact_in_bounded_memory()
    {
        string spool = Path.Combine(_pki.Directory, "spool-" + Guid.NewGuid().ToString("N"));
        string media = $"[media]\nspool_dir = \"{spool}\"\n";
        using var blob = new BlobStream(Size + 7, seed: 22);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        long uploadGrowth;
        await using (var first = new RelaydProcess(_pki, media))
        {
            await first.StartAsync();
            await using RelayClient alpha = await first.ConnectAsync("alpha");
            // Warm-up: a small blob for gamma (also offline), so the baseline includes the upload path's one-off costs.
            using (var warm = new BlobStream(8 * 1024 * 1024, seed: 23))
            {
                MediaOpen warmOpen = MediaBlobs.Open("alpha", "gamma", warm);
                warm.Position = 0;
                await alpha.SendMediaAsync(warmOpen, warm).Within(60);
            }

            blob.Position = 0;
            await using (RssGrowth rss = RssGrowth.Start(first.Pid))
            {
                await alpha.SendMediaAsync(open, blob).Within(300);
                uploadGrowth = rss.GrowthBytes("offline recipient, 1 GiB into the spool");
            }

            // Disposing kills the process (SIGKILL): what MediaComplete acknowledged must already be on disk.
        }

        await using var second = new RelaydProcess(_pki, media);
        await second.StartAsync();
        await second.WaitForOutputAsync("2 blobs to deliver");
        await using (RelayClient gamma = await second.ConnectAsync("gamma"))
        {
            await MediaBlobs.ReceiveAsync(gamma); // warms the delivery path
        }

        long deliveryGrowth;
        (MediaOpen Open, long Length, byte[] Sha256) received;
        await using (RssGrowth rss = RssGrowth.Start(second.Pid))
        {
            await using RelayClient beta = await second.ConnectAsync("beta");
            received = await MediaBlobs.ReceiveAsync(beta, seconds: 300);
            deliveryGrowth = rss.GrowthBytes("after the restart, 1 GiB from the spool to beta");
        }

        Assert.Equal(open, received.Open);
        Assert.Equal((long)open.TotalSize, received.Length);
        Assert.Equal(open.Sha256.ToByteArray(), received.Sha256);
        Assert.InRange(uploadGrowth, long.MinValue, 64L * 1024 * 1024);
        Assert.InRange(deliveryGrowth, long.MinValue, 64L * 1024 * 1024);
    }

    [Fact]
    public async Task A_partial_upload_survives_a_relay_restart_and_the_sender_resumes_it_from_the_durable_offset()
    {
        string spool = Path.Combine(_pki.Directory, "spool-" + Guid.NewGuid().ToString("N"));
        string media = $"[media]\nspool_dir = \"{spool}\"\nwindow_bytes = 1048576\n";
        const long Size = 16L * 1024 * 1024;
        using var blob = new BlobStream(Size, seed: 23);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        await using (var first = new RelaydProcess(_pki, media))
        {
            await first.StartAsync();
            RelayClient alpha = await first.ConnectAsync("alpha");
            blob.Position = 0;
            blob.BeforeRead = position =>
            {
                if (position >= Size / 2)
                {
                    blob.BeforeRead = null;
                    _ = alpha.DisposeAsync().AsTask();
                }
            };
            await Assert.ThrowsAnyAsync<Exception>(() => alpha.SendMediaAsync(open, blob).Within(60));
            await alpha.DisposeAsync();
        }

        await using var second = new RelaydProcess(_pki, media);
        await second.StartAsync();
        await second.WaitForOutputAsync("1 partial transfers to resume");
        await using RelayClient again = await second.ConnectAsync("alpha");
        await using RelayClient beta = await second.ConnectAsync("beta");
        Task<(MediaOpen Open, long Length, byte[] Sha256)> received = MediaBlobs.ReceiveAsync(beta);
        await again.ResumeMediaAsync(open, blob).Within(60);
        (_, long length, byte[] sha) = await received;

        Assert.Equal(Size, length);
        Assert.Equal(open.Sha256.ToByteArray(), sha);
    }

    /// <summary>Peak VmRSS of a relay process over a baseline taken at the start, sampled every 50 ms.</summary>
    private sealed class RssGrowth : IAsyncDisposable
    {
        private readonly long _baseline;
        private readonly ProcessMemory _sampling;

        private RssGrowth(int pid)
        {
            _baseline = ProcessMemory.ReadVmRssBytes(pid);
            _sampling = ProcessMemory.StartSampling(() => pid, TimeSpan.FromMilliseconds(50));
        }

        public static RssGrowth Start(int pid) => new(pid);

        public long GrowthBytes(string what)
        {
            long peak = Math.Max(_baseline, _sampling.PeakBytes);
            TestContext.Current.TestOutputHelper?.WriteLine($"{what}: relay RSS baseline {_baseline >> 20} MiB, peak {peak >> 20} MiB, growth {(peak - _baseline) >> 20} MiB");
            return peak - _baseline;
        }

        public ValueTask DisposeAsync() => _sampling.DisposeAsync();
    }
}
