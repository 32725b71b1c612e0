using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Media;

/// <summary>A sender whose connection breaks mid-transfer asks where to continue and finishes the same blob.</summary>
public sealed class MediaResumeTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public MediaResumeTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Connections_killed_at_random_offsets_several_times_still_deliver_the_blob_with_no_byte_lost_or_duplicated()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.WindowBytes = 256 * 1024);
        await using RelayClient beta = await relay.ConnectAsync("beta");
        const long Size = 24L * 1024 * 1024;
        using var blob = new BlobStream(Size, seed: 11);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        var random = new Random(12345);
        long[] killAt = [.. Enumerable.Range(0, 4).Select(i => (Size / 5 * i) + random.NextInt64(1, Size / 5)).Order()];
        Task<(MediaOpen Open, long Length, byte[] Sha256)> received = MediaBlobs.ReceiveAsync(beta, seconds: 120);

        var resumedAt = new List<long>();
        int attempt = 0;
        MediaComplete? complete = null;
        while (complete is null && attempt <= killAt.Length)
        {
            RelayClient alpha = await relay.ConnectAsync("alpha");
            long killOffset = attempt < killAt.Length ? killAt[attempt] : long.MaxValue;
            // The sender's connection dies abruptly once it has read its content past the kill offset.
            blob.BeforeRead = position =>
            {
                if (position >= killOffset)
                {
                    blob.BeforeRead = null;
                    _ = alpha.DisposeAsync().AsTask();
                }
            };
            try
            {
                if (attempt == 0)
                {
                    blob.Position = 0;
                    complete = await alpha.SendMediaAsync(open, blob).Within(60);
                }
                else
                {
                    complete = await alpha.ResumeMediaAsync(open, blob).Within(60);
                    resumedAt.Add(blob.Position);
                }
            }
            catch (Exception ex) when (ex is RelayException or IOException or OperationCanceledException or ObjectDisposedException)
            {
                // Killed: resume on a new connection.
            }
            finally
            {
                await alpha.DisposeAsync();
            }

            attempt++;
        }

        (MediaOpen atBeta, long length, byte[] sha) = await received;
        Assert.NotNull(complete);
        Assert.Equal(killAt.Length + 1, attempt);
        Assert.Equal(Size, length);
        Assert.Equal(open.Sha256.ToByteArray(), sha);
        Assert.Equal(open.TransferId, atBeta.TransferId);
        Assert.Equal(killAt.Length, (await WaitForResumeLogs(relay, killAt.Length)).Count);
    }

    [Fact]
    public async Task Resuming_a_finished_transfer_answers_complete_without_resending()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(100_000, seed: 13);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        await alpha.SendMediaAsync(open, blob).Within();
        long before = blob.Position;

        MediaComplete again = await alpha.ResumeMediaAsync(open, blob).Within();

        Assert.Equal(open.TotalSize, again.TotalSize);
        Assert.Equal(before, blob.Position);
    }

    private static async Task<List<string>> WaitForResumeLogs(TestRelay relay, int count)
    {
        for (int i = 0; i < 100; i++)
        {
            List<string> lines = [.. relay.Logs.Where(l => l.Contains(" 603]", StringComparison.Ordinal))];
            if (lines.Count >= count)
            {
                return lines;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        return [.. relay.Logs.Where(l => l.Contains(" 603]", StringComparison.Ordinal))];
    }
}
