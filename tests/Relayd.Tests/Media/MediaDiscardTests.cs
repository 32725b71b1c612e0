using System.Threading.Channels;
using Google.Protobuf;
using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Media;

/// <summary>
/// A recipient that was sent part of a blob that then fails at the relay is always told so (an Error naming the
/// transfer), however the failure, the recipient's arrival and the streaming interleave; its connection carries on.
/// </summary>
public sealed class MediaDiscardTests : IClassFixture<PkiFixture>
{
    // The interleavings that lose the notice are rare per run; this many runs hit them reliably.
    private const int Iterations = 40;

    private readonly TestPki _pki;

    public MediaDiscardTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task Every_recipient_that_got_MediaOpen_of_a_blob_with_a_wrong_digest_gets_MEDIA_DIGEST_MISMATCH_for_it_and_stays_connected()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        byte[] wrong = new byte[32];
        wrong[0] = 1;
        int streamed = 0;

        for (int i = 0; i < Iterations; i++)
        {
            // Sizes from one to a dozen delivery chunks; beta says Hello before the upload, with it, or during it,
            // so that the failure lands at every stage of beta's session and of the stream.
            using var blob = new BlobStream(64 * 1024 * (1 + (i % 12)), seed: i);
            MediaOpen open = MediaBlobs.Open("alpha", "beta", blob, sha256: wrong);
            blob.Position = 0;
            await using RawPartnerConnection beta = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("beta"), _pki.Ca);
            Channel<Frame>? atBeta = i % 3 == 0 ? await HelloAsync(beta) : null;
            Task<RelayException> atAlpha = Envelopes.RefusedAsync(() => alpha.SendMediaAsync(open, blob).Within(30));
            if (i % 3 == 2)
            {
                await Task.Yield(); // let the upload begin before beta's Hello
            }

            atBeta ??= await HelloAsync(beta);
            Assert.Equal(ErrorCode.MediaDigestMismatch, (await atAlpha).Code);

            List<Frame> frames = await FramesOfAsync(beta, atBeta, open.TransferId, nonce: (ulong)i + 1);
            if (frames.Count == 0)
            {
                continue; // never streamed: the upload failed before beta's session took the blob
            }

            streamed++;
            Assert.True(frames[0].BodyCase == Frame.BodyOneofCase.MediaOpen, $"iteration {i}: the first frame was {frames[0].BodyCase}");
            Assert.True(
                frames[^1].Error?.Code == ErrorCode.MediaDigestMismatch,
                $"iteration {i} ({blob.Length} bytes): beta got {string.Join(", ", frames.Select(f => f.BodyCase))} and then nothing");
            Assert.DoesNotContain(frames, f => f.BodyCase == Frame.BodyOneofCase.MediaClose);
        }

        Assert.True(streamed > 0, "no blob was streamed to beta");
        Assert.Empty(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory));
    }

    [Fact]
    public async Task A_spooled_blob_whose_file_is_gone_is_dropped_with_a_log_line_and_the_recipient_session_carries_on()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(200_000, seed: 3);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        await alpha.SendMediaAsync(open, blob).Within();
        string spooled = Assert.Single(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory), f => f.EndsWith(".blob", StringComparison.Ordinal));
        File.Delete(spooled);

        await using RelayClient beta = await relay.ConnectAsync("beta");
        await relay.WaitForLogAsync(" 608] Media spool I/O failed at " + spooled[..^".blob".Length]);
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
        Deliver after = await beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();

        Assert.Equal("alpha", after.Envelope.SenderPartner);
        Assert.False(beta.Completion.IsCompleted);
        Assert.True(await Envelopes.StaysEmpty(beta.IncomingMedia, 200));
    }

    private static async Task<Channel<Frame>> HelloAsync(RawPartnerConnection beta)
    {
        await beta.SendHelloAsync();
        Assert.Equal(Frame.BodyOneofCase.Welcome, (await beta.ReadFrameAsync())?.BodyCase);
        return ReadAll(beta);
    }

    /// <summary>Reads every frame of <paramref name="connection"/> into a channel, which completes when the relay closes it.</summary>
    private static Channel<Frame> ReadAll(RawPartnerConnection connection)
    {
        var frames = Channel.CreateUnbounded<Frame>();
        _ = Task.Run(async () =>
        {
            try
            {
                while (await connection.ReadFrameAsync(timeoutSeconds: 600) is { } frame)
                {
                    frames.Writer.TryWrite(frame);
                }

                frames.Writer.TryComplete();
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
            {
                frames.Writer.TryComplete(ex);
            }
        });
        return frames;
    }

    /// <summary>
    /// Frames naming <paramref name="transferId"/>, up to the one that ends it (Error or MediaClose). Sends a Ping
    /// first: the relay's writer sends replies before media in each pass, so a blob it took before the upload failed
    /// has its MediaOpen ahead of the Pong; with no MediaOpen by the Pong the blob was never streamed. The Pong also
    /// shows the connection is still up.
    /// </summary>
    private static async Task<List<Frame>> FramesOfAsync(RawPartnerConnection beta, Channel<Frame> frames, ByteString transferId, ulong nonce)
    {
        await beta.SendAsync(new Frame { Ping = new Ping { Nonce = nonce } });
        var of = new List<Frame>();
        bool ponged = false;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(20));
        while (true)
        {
            Frame frame;
            try
            {
                frame = await frames.Reader.ReadAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
            {
                Assert.True(ponged, $"beta got no Pong within 20 s (after {string.Join(", ", of.Select(f => f.BodyCase))})");
                return of;
            }
            catch (ChannelClosedException ex)
            {
                throw new Xunit.Sdk.XunitException($"the relay closed beta's connection after [{string.Join(", ", of.Select(f => f.BodyCase))}]: {ex.InnerException?.Message}");
            }

            if (frame.Pong?.Nonce == nonce)
            {
                ponged = true;
                if (of.Count == 0)
                {
                    return of;
                }

                continue;
            }

            ByteString? id = frame.BodyCase switch
            {
                Frame.BodyOneofCase.MediaOpen => frame.MediaOpen.TransferId,
                Frame.BodyOneofCase.MediaChunk => frame.MediaChunk.TransferId,
                Frame.BodyOneofCase.MediaClose => frame.MediaClose.TransferId,
                Frame.BodyOneofCase.Error => frame.Error.TransferId,
                _ => null,
            };
            if (id != transferId)
            {
                continue;
            }

            of.Add(frame);
            if (frame.BodyCase is Frame.BodyOneofCase.Error or Frame.BodyOneofCase.MediaClose)
            {
                return of;
            }
        }
    }
}
