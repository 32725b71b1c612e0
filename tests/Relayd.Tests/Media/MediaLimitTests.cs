using Google.Protobuf;
using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.Internal;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Media;

/// <summary>Every media refusal is a typed Error naming the transfer; the connection and other partners carry on.</summary>
public sealed class MediaLimitTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public MediaLimitTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_declared_size_above_the_limit_is_refused_with_MEDIA_TOO_LARGE_at_MediaOpen_before_any_chunk()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.MaxBytes = 1024 * 1024);
        await using RawPartnerConnection alpha = await ConnectRawAsync(relay, "alpha");
        MediaOpen open = OpenFor("alpha", "beta", size: 1024 * 1024 + 1);

        await alpha.SendAsync(new Frame { MediaOpen = open });
        Frame? answer = await alpha.ReadFrameAsync();

        Assert.Equal(ErrorCode.MediaTooLarge, answer?.Error?.Code);
        Assert.Equal(open.TransferId, answer!.Error.TransferId);
        Assert.False(answer.Error.Fatal);
        // No credit was granted, and a chunk sent anyway is refused as belonging to no transfer.
        await alpha.SendAsync(Chunk(open, 0, new byte[100]));
        Assert.Equal(ErrorCode.MediaUnknownTransfer, (await alpha.ReadFrameAsync())?.Error?.Code);
        Assert.Empty(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory));
    }

    [Fact]
    public async Task The_size_limit_can_be_raised_for_one_partner()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o =>
        {
            o.Media.MaxBytes = 1024;
            o.Partners.First(p => p.Id == "gamma").MaxMediaBytes = 1024 * 1024;
        });
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        using var blob = new BlobStream(100_000, seed: 7);
        MediaOpen fromAlpha = MediaBlobs.Open("alpha", "beta", blob);
        MediaOpen fromGamma = MediaBlobs.Open("gamma", "beta", blob);

        blob.Position = 0;
        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendMediaAsync(fromAlpha, blob).Within());
        blob.Position = 0;
        MediaComplete accepted = await gamma.SendMediaAsync(fromGamma, blob).Within();

        Assert.Equal(ErrorCode.MediaTooLarge, refused.Code);
        Assert.Equal(100_000UL, accepted.TotalSize);
    }

    [Fact]
    public async Task A_wrong_digest_is_refused_with_MEDIA_DIGEST_MISMATCH_and_nothing_is_kept_for_an_offline_recipient()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(3 * 1024 * 1024, seed: 8);
        byte[] wrong = new byte[32];
        wrong[0] = 1;
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob, sha256: wrong);
        blob.Position = 0;

        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendMediaAsync(open, blob).Within(30));
        await using RelayClient beta = await relay.ConnectAsync("beta");

        Assert.Equal(ErrorCode.MediaDigestMismatch, refused.Code);
        Assert.Contains(relay.Logs, l => l.Contains(" 605]", StringComparison.Ordinal) && l.Contains("3145728 bytes", StringComparison.Ordinal));
        Assert.Empty(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory));
        Assert.True(await Envelopes.StaysEmpty(beta.IncomingMedia, 300));
    }

    [Fact]
    public async Task A_wrong_digest_tells_a_recipient_that_was_streaming_the_blob_to_discard_it()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new BlobStream(3 * 1024 * 1024, seed: 8);
        byte[] wrong = new byte[32];
        wrong[0] = 1;
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob, sha256: wrong);
        blob.Position = 0;

        Task<RelayException> atBeta = Envelopes.RefusedAsync(() => MediaBlobs.ReceiveAsync(beta, acknowledge: false));
        RelayException atAlpha = await Envelopes.RefusedAsync(() => alpha.SendMediaAsync(open, blob).Within(30));

        Assert.Equal(ErrorCode.MediaDigestMismatch, atAlpha.Code);
        Assert.Equal(ErrorCode.MediaDigestMismatch, (await atBeta.Within(30)).Code);
        Assert.Empty(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory));
    }

    [Fact]
    public async Task A_chunk_at_the_wrong_offset_is_refused_with_MEDIA_OFFSET_MISMATCH_and_MediaResume_says_where_to_continue()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await ConnectRawAsync(relay, "alpha");
        byte[] data = Envelopes.RandomCiphertext(1000);
        MediaOpen open = OpenFor("alpha", "beta", size: data.Length, sha256: System.Security.Cryptography.SHA256.HashData(data));
        await alpha.SendAsync(new Frame { MediaOpen = open });
        Assert.Equal(1000UL, (await alpha.ReadFrameAsync())?.MediaCredit?.Bytes);

        await alpha.SendAsync(Chunk(open, 0, data[..400]));
        await alpha.SendAsync(Chunk(open, 500, data[500..]));
        Frame? refusal = await alpha.ReadFrameAsync();
        await alpha.SendAsync(new Frame { MediaResume = new MediaResume { TransferId = open.TransferId } });
        Frame? resumed = await alpha.ReadFrameAsync();
        await alpha.SendAsync(Chunk(open, 400, data[400..]));
        await alpha.SendAsync(new Frame { MediaClose = new MediaClose { TransferId = open.TransferId } });
        Frame? complete = await alpha.ReadFrameAsync();

        Assert.Equal(ErrorCode.MediaOffsetMismatch, refusal?.Error?.Code);
        Assert.Equal(open.TransferId, refusal!.Error.TransferId);
        Assert.Equal(400UL, resumed?.MediaResumed?.NextOffset);
        Assert.Equal(600UL, resumed!.MediaResumed.Credit);
        Assert.Equal(1000UL, complete?.MediaComplete?.TotalSize);
    }

    [Fact]
    public async Task A_chunk_beyond_the_granted_window_is_refused_with_MEDIA_CREDIT_EXCEEDED()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.WindowBytes = 64 * 1024);
        await using RawPartnerConnection alpha = await ConnectRawAsync(relay, "alpha");
        MediaOpen open = OpenFor("alpha", "beta", size: 1024 * 1024);
        await alpha.SendAsync(new Frame { MediaOpen = open });
        Assert.Equal(64UL * 1024, (await alpha.ReadFrameAsync())?.MediaCredit?.Bytes);

        await alpha.SendAsync(Chunk(open, 0, new byte[(64 * 1024) + 1]));

        Assert.Equal(ErrorCode.MediaCreditExceeded, (await alpha.ReadFrameAsync())?.Error?.Code);
    }

    [Fact]
    public async Task An_exhausted_spool_quota_refuses_that_partner_with_SPOOL_FULL_and_other_partners_are_unaffected()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.SpoolQuotaBytesPerPartner = 1024 * 1024);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        using var blob = new BlobStream(600 * 1024, seed: 9);
        MediaOpen first = MediaBlobs.Open("alpha", "beta", blob);
        MediaOpen second = MediaBlobs.Open("alpha", "beta", blob);
        MediaOpen fromGamma = MediaBlobs.Open("gamma", "beta", blob);

        blob.Position = 0;
        await alpha.SendMediaAsync(first, blob).Within(); // beta is offline: 600 KiB of alpha's 1 MiB stay spooled
        blob.Position = 0;
        RelayException refused = await Envelopes.RefusedAsync(() => alpha.SendMediaAsync(second, blob).Within());
        blob.Position = 0;
        MediaComplete gammaDone = await gamma.SendMediaAsync(fromGamma, blob).Within();
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within(); // envelopes of the full partner still flow

        Assert.Equal(ErrorCode.SpoolFull, refused.Code);
        Assert.True(refused.RetryAfterMs > 0);
        Assert.Equal(fromGamma.TotalSize, gammaDone.TotalSize);
    }

    [Fact]
    public async Task The_spool_quota_is_released_once_the_recipient_has_the_blob()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.SpoolQuotaBytesPerPartner = 1024 * 1024);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(600 * 1024, seed: 10);
        MediaOpen first = MediaBlobs.Open("alpha", "beta", blob);
        MediaOpen second = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        await alpha.SendMediaAsync(first, blob).Within();

        await using RelayClient beta = await relay.ConnectAsync("beta");
        await MediaBlobs.ReceiveAsync(beta);
        await relay.WaitForLogAsync("spool copy deleted");
        blob.Position = 0;
        MediaComplete again = await alpha.SendMediaAsync(second, blob).Within();

        Assert.Equal(second.TotalSize, again.TotalSize);
    }

    [Fact]
    public async Task More_open_transfers_than_allowed_are_refused_with_MEDIA_TOO_MANY_TRANSFERS()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.MaxConcurrentTransfersPerPartner = 2);
        await using RawPartnerConnection alpha = await ConnectRawAsync(relay, "alpha");
        MediaOpen[] opens = [OpenFor("alpha", "beta", 1000), OpenFor("alpha", "beta", 1000), OpenFor("alpha", "beta", 1000)];

        var answers = new List<Frame?>();
        foreach (MediaOpen open in opens)
        {
            await alpha.SendAsync(new Frame { MediaOpen = open });
            answers.Add(await alpha.ReadFrameAsync());
        }

        Assert.Equal(Frame.BodyOneofCase.MediaCredit, answers[0]?.BodyCase);
        Assert.Equal(Frame.BodyOneofCase.MediaCredit, answers[1]?.BodyCase);
        Assert.Equal(ErrorCode.MediaTooManyTransfers, answers[2]?.Error?.Code);
        Assert.Equal(opens[2].TransferId, answers[2]!.Error.TransferId);
    }

    [Fact]
    public async Task A_stalled_transfer_is_dropped_with_MEDIA_IDLE_TIMEOUT_and_its_partial_spool_deleted()
    {
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Media.TransferIdleTimeout = TimeSpan.FromMilliseconds(300));
        await using RawPartnerConnection alpha = await ConnectRawAsync(relay, "alpha");
        MediaOpen open = OpenFor("alpha", "beta", size: 10_000);
        await alpha.SendAsync(new Frame { MediaOpen = open });
        await alpha.ReadFrameAsync(); // credit
        await alpha.SendAsync(Chunk(open, 0, new byte[5000]));
        bool partialWritten = MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory).Length > 0;

        Frame? dropped = await alpha.ReadFrameAsync(timeoutSeconds: 5);

        Assert.True(partialWritten);
        Assert.Equal(ErrorCode.MediaIdleTimeout, dropped?.Error?.Code);
        Assert.Equal(open.TransferId, dropped!.Error.TransferId);
        Assert.Empty(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory));
        await alpha.SendAsync(new Frame { MediaResume = new MediaResume { TransferId = open.TransferId } });
        Assert.Equal(ErrorCode.MediaUnknownTransfer, (await alpha.ReadFrameAsync())?.Error?.Code);
    }

    [Fact]
    public async Task MediaOpen_naming_another_sender_or_an_unknown_recipient_is_refused_with_its_code()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RawPartnerConnection alpha = await ConnectRawAsync(relay, "alpha");

        await alpha.SendAsync(new Frame { MediaOpen = OpenFor("gamma", "beta", 10) });
        Frame? mismatch = await alpha.ReadFrameAsync();
        await alpha.SendAsync(new Frame { MediaOpen = OpenFor("alpha", "nobody", 10) });
        Frame? unknown = await alpha.ReadFrameAsync();

        Assert.Equal(ErrorCode.SenderMismatch, mismatch?.Error?.Code);
        Assert.Equal(ErrorCode.UnknownRecipientPartner, unknown?.Error?.Code);
    }

    private static async Task<RawPartnerConnection> ConnectRawAsync(TestRelay relay, string partner)
    {
        RawPartnerConnection raw = await RawPartnerConnection.ConnectAsync(relay.Port, relay.Pki.Partner(partner), relay.Pki.Ca);
        await raw.SendHelloAsync();
        Assert.Equal(Frame.BodyOneofCase.Welcome, (await raw.ReadFrameAsync())?.BodyCase);
        return raw;
    }

    private static MediaOpen OpenFor(string from, string to, long size, byte[]? sha256 = null) => new()
    {
        TransferId = ByteString.CopyFrom(Guid.NewGuid().ToByteArray()),
        SenderPartner = from,
        RecipientPartner = to,
        RecipientUser = ByteString.CopyFromUtf8("user-1"),
        ContentKind = ContentKind.File,
        TotalSize = (ulong)size,
        Sha256 = ByteString.CopyFrom(sha256 ?? new byte[32]),
    };

    private static Frame Chunk(MediaOpen open, long offset, byte[] data) =>
        new() { MediaChunk = new MediaChunk { TransferId = open.TransferId, Offset = (ulong)offset, Data = ByteString.CopyFrom(data) } };
}
