using System.Diagnostics;
using System.Globalization;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Durability;

/// <summary>
/// Disk full for real: the log on a 16 MiB tmpfs (1 MiB segments, 2 MiB reserve). Before the filesystem runs out the
/// relay refuses new envelopes with STORAGE_FULL and a retry-after (while the filesystem still has free space), keeps delivering, loses nothing it acked, and
/// accepts again once beta has drained and the delivered segments are deleted. Needs root to mount; skipped otherwise.
/// </summary>
public sealed class DiskFullTests : IClassFixture<PkiFixture>
{
    private const int TmpfsMiB = 16;
    private const int CiphertextBytes = 1024;
    private const int Conversations = 4;
    private const int SendWindow = 64;
    // Twice what fits on the filesystem: sending this much without STORAGE_FULL means the reserve is not enforced.
    private const int MaxEnvelopes = 2 * TmpfsMiB * 1024;

    private readonly TestPki _pki;

    public DiskFullTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact(Timeout = 5 * 60 * 1000)]
    public async Task On_a_full_tmpfs_senders_get_STORAGE_FULL_nothing_acked_is_lost_and_sends_are_accepted_again_after_beta_drains()
    {
        if (!TmpfsMount.RunningAsRoot)
        {
            Assert.Skip($"needs root to mount a {TmpfsMiB} MiB tmpfs for the write-ahead log (geteuid() != 0); run the tests as root to include it");
        }

        (TmpfsMount? mounted, string failure) = await TmpfsMount.TryMountAsync(TmpfsMiB);
        if (mounted is null)
        {
            Assert.Skip($"running as root, but the tmpfs could not be mounted: {failure}");
        }

        await using TmpfsMount tmpfs = mounted;
        await using var relay = new RelaydProcess(_pki, walDirectory: Path.Combine(tmpfs.Directory, "wal"), walKeys: """
            segment_bytes = 1048576
            reserve_bytes = 2097152
            """);
        await relay.StartAsync();
        var ledger = new ConversationLedger("alpha", "beta", Conversations, CiphertextBytes);
        var arrivals = new ArrivalLog(ledger);
        await using RelayClient alpha = await relay.ConnectAsync("alpha", receipts: false);

        (RelayException? storageFull, List<RelayException> refusals) = await SendUntilRefusedAsync(alpha, ledger);
        int ackedBeforeFull = ledger.AckedCount;
        long freeAtRefusal = new DriveInfo(tmpfs.Directory).AvailableFreeSpace;
        Assert.True(storageFull is not null, $"{ledger.SentCount} envelopes of {CiphertextBytes} B were accepted on a {TmpfsMiB} MiB filesystem without STORAGE_FULL");

        await using RelayClient beta = await relay.ConnectAsync("beta", receipts: false);
        using var receiving = new CancellationTokenSource();
        Task receiveLoop = ReceiveAsync(beta, arrivals, receiving.Token);
        await WaitUntilAsync(() => ledger.Acked.All(s => arrivals.HasArrived(s.Envelope.MessageId)), TimeSpan.FromSeconds(60));
        var lost = ledger.Acked.Where(s => !arrivals.HasArrived(s.Envelope.MessageId)).ToList();

        // Accepting resumes once the relay has deleted the delivered segments.
        var resumeClock = Stopwatch.StartNew();
        ConversationLedger.Sent again = ledger.Next();
        Ack? acceptedAgain = null;
        int refusedRetries = 0;
        while (acceptedAgain is null && resumeClock.Elapsed < TimeSpan.FromSeconds(90))
        {
            try
            {
                acceptedAgain = await alpha.SendAsync(again.Envelope).Within();
                again.Ack = acceptedAgain;
            }
            catch (RelayException ex) when (ex.Code == ErrorCode.StorageFull)
            {
                refusedRetries++;
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Clamp(ex.RetryAfterMs, 50, 2000)), TestContext.Current.CancellationToken);
            }
        }

        if (acceptedAgain is not null)
        {
            await WaitUntilAsync(() => arrivals.HasArrived(again.Envelope.MessageId), TimeSpan.FromSeconds(20));
        }

        await receiving.CancelAsync();
        await receiveLoop;
        long freeAtEnd = new DriveInfo(tmpfs.Directory).AvailableFreeSpace;
        string walFiles = string.Join(", ", Directory.EnumerateFiles(relay.WalDirectory).Order(StringComparer.Ordinal)
            .Select(f => string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(f)} {new FileInfo(f).Length / 1024} KiB")));
        TestReport.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
            disk full: {ackedBeforeFull} envelopes of {CiphertextBytes} B acked on a {TmpfsMiB} MiB tmpfs before {storageFull?.Code} (retry after {storageFull?.RetryAfterMs} ms), {freeAtRefusal} bytes then free on the filesystem; {refusals.Count} refusals in all ({string.Join(", ", refusals.Select(r => r.Code).Distinct())})
              beta received {arrivals.Distinct} distinct ({arrivals.Duplicates} duplicates), lost: {lost.Count}, order/integrity problems: {arrivals.Problems.Count}
              accepted again after draining: {(acceptedAgain is null ? $"no ({refusedRetries} more STORAGE_FULL in {resumeClock.Elapsed.TotalSeconds:F0} s)" : $"yes, after {resumeClock.Elapsed.TotalSeconds:F1} s and {refusedRetries} more STORAGE_FULL")}
              at the end: {freeAtEnd} bytes free; log directory: {walFiles}
            """));

        Assert.Equal(ErrorCode.StorageFull, storageFull!.Code);
        Assert.True(storageFull.RetryAfterMs > 0, "STORAGE_FULL without retry_after_ms");
        Assert.All(refusals, r => Assert.Equal(ErrorCode.StorageFull, r.Code));
        Assert.True(freeAtRefusal > 0, "the filesystem ran completely out before the relay refused: the reserve must stop accepting before that");
        Assert.True(lost.Count == 0, $"{lost.Count} acked envelopes never reached beta");
        Assert.True(arrivals.Problems.Count == 0, string.Join("; ", arrivals.Problems.Take(10)));
        Assert.True(acceptedAgain is not null, "after beta drained, alpha's envelope was still refused after 90 s");
        Assert.True(arrivals.HasArrived(again.Envelope.MessageId), "the envelope accepted after draining did not reach beta");
    }

    /// <summary>Sends 1 KiB envelopes, up to <see cref="SendWindow"/> unanswered, until the relay refuses one; stops sending then.</summary>
    private static async Task<(RelayException? First, List<RelayException> All)> SendUntilRefusedAsync(RelayClient alpha, ConversationLedger ledger)
    {
        var inFlight = new Queue<(ConversationLedger.Sent Sent, Task<Ack> Ack)>();
        var refusals = new List<RelayException>();
        while (refusals.Count == 0 && ledger.SentCount < MaxEnvelopes || inFlight.Count > 0)
        {
            while (refusals.Count == 0 && inFlight.Count < SendWindow && ledger.SentCount < MaxEnvelopes)
            {
                ConversationLedger.Sent sent = ledger.Next();
                inFlight.Enqueue((sent, alpha.SendAsync(sent.Envelope, CancellationToken.None)));
            }

            (ConversationLedger.Sent oldest, Task<Ack> answer) = inFlight.Dequeue();
            try
            {
                oldest.Ack = await answer.Within(60);
            }
            catch (RelayException ex)
            {
                refusals.Add(ex);
            }
        }

        return (refusals.FirstOrDefault(), refusals);
    }

    private static async Task ReceiveAsync(RelayClient beta, ArrivalLog arrivals, CancellationToken stop)
    {
        try
        {
            await arrivals.ReceiveAsync(beta, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Done.
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (condition())
            {
                return;
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
