using Google.Protobuf;
using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Media;

/// <summary>Blobs cross the relay intact, spooled when the recipient is away, and the relay deletes them once delivered.</summary>
public sealed class MediaTransferTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public MediaTransferTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_blob_to_a_connected_recipient_arrives_intact_and_its_spool_copy_is_deleted_on_MediaReceived()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new BlobStream(8 * 1024 * 1024 + 12345, seed: 1);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;

        Task<(MediaOpen Open, long Length, byte[] Sha256)> received = MediaBlobs.ReceiveAsync(beta);
        MediaComplete complete = await alpha.SendMediaAsync(open, blob).Within(60);
        (MediaOpen atBeta, long length, byte[] sha) = await received;

        Assert.Equal(open.TotalSize, complete.TotalSize);
        Assert.Equal(open, atBeta); // every field as the sender wrote it
        Assert.Equal((long)open.TotalSize, length);
        Assert.Equal(open.Sha256.ToByteArray(), sha);
        await relay.WaitForLogAsync("spool copy deleted");
        Assert.Empty(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory));
    }

    [Fact]
    public async Task CopyToAndVerifyAsync_writes_the_blob_out_and_confirms_the_declared_digest()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new BlobStream(3 * 1024 * 1024 + 7, seed: 8);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;

        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(20);
        using var stored = new MemoryStream();
        bool verified = await incoming.CopyToAndVerifyAsync(stored, TestContext.Current.CancellationToken).Within(60);
        await upload.Within(60);

        Assert.True(verified);
        Assert.Equal((long)open.TotalSize, stored.Length);
        Assert.Equal(open.Sha256.ToByteArray(), System.Security.Cryptography.SHA256.HashData(stored.ToArray()));
    }

    [Fact]
    public async Task A_connected_recipient_receives_chunks_while_the_sender_is_still_uploading()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new BlobStream(32L * 1024 * 1024, seed: 6);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        var recipientHasBytes = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool senderWaited = false;
        // The sender stops at 8 MiB until beta has read its first MiB: without cut-through this never happens.
        blob.BeforeRead = position =>
        {
            if (position >= 8 * 1024 * 1024 && !senderWaited)
            {
                senderWaited = recipientHasBytes.Task.Wait(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken);
            }
        };

        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(20);
        byte[] first = new byte[1024 * 1024];
        await incoming.Content.ReadExactlyAsync(first, TestContext.Current.CancellationToken);
        bool uploadStillRunning = !upload.IsCompleted;
        recipientHasBytes.SetResult();
        using var rest = new MemoryStream();
        await incoming.Content.CopyToAsync(rest, TestContext.Current.CancellationToken).Within(60);
        await upload.Within(60);

        Assert.True(senderWaited);
        Assert.True(uploadStillRunning);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        hash.AppendData(first);
        hash.AppendData(rest.ToArray());
        Assert.Equal(open.Sha256.ToByteArray(), hash.GetHashAndReset());
    }

    [Fact]
    public async Task A_blob_for_an_offline_recipient_is_spooled_to_disk_before_MediaComplete_and_delivered_when_it_connects()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(300 * 1024, seed: 2);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;

        await alpha.SendMediaAsync(open, blob).Within(30);
        long[] spooledBlobSizes = [.. MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory).Where(f => f.EndsWith(".blob", StringComparison.Ordinal)).Select(f => new FileInfo(f).Length)];
        await using RelayClient beta = await relay.ConnectAsync("beta");
        (MediaOpen atBeta, long length, byte[] sha) = await MediaBlobs.ReceiveAsync(beta);

        Assert.Equal([(long)open.TotalSize], spooledBlobSizes);
        Assert.Equal(open.TransferId, atBeta.TransferId);
        Assert.Equal((long)open.TotalSize, length);
        Assert.Equal(open.Sha256.ToByteArray(), sha);
    }

    [Fact]
    public async Task A_spooled_blob_that_expires_undelivered_is_deleted_and_never_delivered()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(200_000, seed: 14);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        open.ExpiresAtMs = DateTimeOffset.UtcNow.AddMilliseconds(800).ToUnixTimeMilliseconds();
        blob.Position = 0;

        await alpha.SendMediaAsync(open, blob).Within();
        bool spooled = MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory).Length > 0;
        await relay.WaitForLogAsync("expired undelivered");
        await using RelayClient beta = await relay.ConnectAsync("beta");

        Assert.True(spooled);
        Assert.Empty(MediaBlobs.SpoolFiles(relay.Options.Media.SpoolDirectory));
        Assert.True(await Envelopes.StaysEmpty(beta.IncomingMedia, 300));
    }

    [Fact]
    public async Task An_unacknowledged_blob_is_delivered_again_after_the_recipient_reconnects()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(1024 * 1024, seed: 3);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        await alpha.SendMediaAsync(open, blob).Within(30);

        RelayClient first = await relay.ConnectAsync("beta");
        await MediaBlobs.ReceiveAsync(first, acknowledge: false);
        await first.DisposeAsync();
        await using RelayClient second = await relay.ConnectAsync("beta");
        (MediaOpen again, long length, byte[] sha) = await MediaBlobs.ReceiveAsync(second);

        Assert.Equal(open.TransferId, again.TransferId);
        Assert.Equal((long)open.TotalSize, length);
        Assert.Equal(open.Sha256.ToByteArray(), sha);
    }

    [Fact]
    public async Task A_recipient_resumes_a_download_from_the_offset_it_asks_for()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var blob = new BlobStream(2 * 1024 * 1024, seed: 4);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        await alpha.SendMediaAsync(open, blob).Within(30);
        await using RelayClient beta = await relay.ConnectAsync("beta");
        IncomingMedia firstDelivery = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
        byte[] head = new byte[700_000];
        await firstDelivery.Content.ReadExactlyAsync(head, TestContext.Current.CancellationToken);

        await beta.ResumeDownloadAsync(open, head.Length);
        // Drain what is still in flight of the first delivery; the relay abandons it for the resumed one.
        try
        {
            await firstDelivery.Content.CopyToAsync(Stream.Null, TestContext.Current.CancellationToken);
        }
        catch (RelayException)
        {
        }

        IncomingMedia resumed = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within();
        using var rest = new MemoryStream();
        await resumed.Content.CopyToAsync(rest, TestContext.Current.CancellationToken);

        Assert.Equal(head.Length, resumed.StartOffset);
        byte[] whole = [.. head, .. rest.ToArray()];
        Assert.Equal(open.Sha256.ToByteArray(), System.Security.Cryptography.SHA256.HashData(whole));
    }

    [Fact]
    public async Task A_text_envelope_reaches_the_recipient_while_a_large_blob_is_still_streaming_to_it()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await using RelayClient gamma = await relay.ConnectAsync("gamma");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new BlobStream(256L * 1024 * 1024, seed: 5);
        MediaOpen open = MediaBlobs.Open("alpha", "beta", blob);
        blob.Position = 0;
        Task<MediaComplete> upload = alpha.SendMediaAsync(open, blob);
        IncomingMedia incoming = await beta.IncomingMedia.ReadAsync(TestContext.Current.CancellationToken).AsTask().Within(30);
        byte[] buffer = new byte[64 * 1024];
        long readBeforeText = 0;
        while (readBeforeText < 4 * 1024 * 1024)
        {
            readBeforeText += await incoming.Content.ReadAsync(buffer, TestContext.Current.CancellationToken);
        }

        Envelope text = Envelopes.New("gamma", "beta");
        await gamma.SendAsync(text).Within();
        long readWhenTextArrived = -1;
        Task<Deliver> delivery = beta.Deliveries.ReadAsync(TestContext.Current.CancellationToken).AsTask();
        long total = readBeforeText;
        int read;
        while ((read = await incoming.Content.ReadAsync(buffer, TestContext.Current.CancellationToken)) > 0)
        {
            total += read;
            if (readWhenTextArrived < 0 && delivery.IsCompleted)
            {
                readWhenTextArrived = total;
            }
        }

        await upload.Within(60);
        Assert.Equal(text.MessageId, (await delivery.Within()).Envelope.MessageId);
        Assert.Equal((long)open.TotalSize, total);
        // The envelope overtook most of the blob instead of waiting behind its 256 MiB.
        Assert.InRange(readWhenTextArrived, readBeforeText, (long)open.TotalSize / 2);
    }
}
