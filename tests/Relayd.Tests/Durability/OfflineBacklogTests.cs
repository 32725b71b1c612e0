using System.Diagnostics;
using System.Globalization;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Durability;

/// <summary>
/// Store-and-forward with a backlog far larger than the relay's memory bound: 100k envelopes of 4 KiB for an offline
/// beta are stored in the log (the per-partner memory cache is 8 MiB), the relay crashes and restarts, and beta
/// then receives all of them in conversation order — while the relay's resident memory stays well below the backlog.
/// </summary>
/// <remarks>
/// The bound is on VmRSS growth over the relay's start, sampled every 50 ms while storing and while delivering after
/// the restart: it must stay below a quarter of the backlog's ciphertext (100k × 4 KiB ≈ 391 MiB). A relay that kept
/// the backlog in memory would grow by all of it; this one holds an 8 MiB cache plus its fixed buffers and indexes.
/// (Total VmRSS is not compared: a .NET relay starts at about 60 MiB, 40 MiB of it mapped runtime code.)
/// <c>RELAYD_BACKLOG_ENVELOPES</c> changes the count (e.g. 300000, to see whether memory grows with the backlog).
/// </remarks>
public sealed class OfflineBacklogTests : IClassFixture<PkiFixture>
{
    private static readonly int EnvelopeCount = TestReport.EnvironmentInt("RELAYD_BACKLOG_ENVELOPES", 100_000);
    private const int CiphertextBytes = 4096;
    private static readonly long BacklogBytes = (long)EnvelopeCount * CiphertextBytes;
    private const long MaxQueuedBytesPerPartner = 8L * 1024 * 1024;
    private const int Conversations = 10;
    private const int SendWindow = 1024;

    private readonly TestPki _pki;

    public OfflineBacklogTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact(Timeout = 10 * 60 * 1000)]
    public async Task A_backlog_of_100k_envelopes_for_an_offline_beta_survives_a_crash_and_arrives_complete_in_conversation_order_in_bounded_memory()
    {
        await using var relay = new RelaydProcess(_pki, limitsKeys: $"max_queued_bytes_per_partner = {MaxQueuedBytesPerPartner}");
        await relay.StartAsync();
        long baseline = relay.ReadRssBytes();
        long baselineFile = ProcessMemory.ReadRssFileBytes(relay.Pid);
        var ledger = new ConversationLedger("alpha", "beta", Conversations, CiphertextBytes);
        var arrivals = new ArrivalLog(ledger);
        var clock = Stopwatch.StartNew();
        CancellationToken cancel = TestContext.Current.CancellationToken;

        long peakWhileStoring;
        string storingDetail;
        RelayException? refusal;
        await using (var memory = ProcessMemory.StartSampling(() => relay.Pid, TimeSpan.FromMilliseconds(50)))
        {
            await using RelayClient alpha = await relay.ConnectAsync("alpha", receipts: false);
            cancel.ThrowIfCancellationRequested();
            refusal = await SendAllAsync(alpha, ledger);
            peakWhileStoring = Math.Max(memory.PeakBytes, relay.ReadRssBytes());
            storingDetail = Detail(memory);
        }

        TimeSpan storing = clock.Elapsed;
        Assert.True(refusal is null, $"the relay refused an envelope for offline beta after {ledger.AckedCount} of {EnvelopeCount} were acked: {refusal?.Code} {refusal?.Detail} (with a log there is no QUEUE_FULL)");

        await relay.KillAsync();
        clock.Restart();
        await relay.StartAsync(readySeconds: 120);
        TimeSpan recovering = clock.Elapsed;
        long afterRecovery = relay.ReadRssBytes();
        long peakWhileDelivering;
        string deliveringDetail;
        clock.Restart();
        await using (var memory = ProcessMemory.StartSampling(() => relay.Pid, TimeSpan.FromMilliseconds(50)))
        {
            await using RelayClient beta = await relay.ConnectAsync("beta", receipts: false);
            await ReceiveAllAsync(beta, arrivals);
            peakWhileDelivering = Math.Max(memory.PeakBytes, relay.ReadRssBytes());
            deliveringDetail = Detail(memory);
        }

        TimeSpan delivering = clock.Elapsed;
        TestReport.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
            offline backlog: {ledger.AckedCount} of {EnvelopeCount} envelopes of {CiphertextBytes} B acked in {storing.TotalSeconds:F1} s; SIGKILL; recovery {recovering.TotalSeconds:F1} s; delivered in {delivering.TotalSeconds:F1} s
              beta received {arrivals.Distinct} distinct ({arrivals.Duplicates} duplicates), order/integrity problems: {arrivals.Problems.Count}
              relayd VmRSS: {Mib(baseline)} at start (RssFile {Mib(baselineFile)}: the runtime's mapped code), peak {Mib(peakWhileStoring)} while storing ({storingDetail}), {Mib(afterRecovery)} after recovery, peak {Mib(peakWhileDelivering)} while delivering ({deliveringDetail}) (backlog {Mib(BacklogBytes)}, memory cache {Mib(MaxQueuedBytesPerPartner)})
            """));

        Assert.Equal(EnvelopeCount, ledger.AckedCount);
        Assert.True(arrivals.Distinct == EnvelopeCount, $"beta received {arrivals.Distinct} of {EnvelopeCount} acked envelopes");
        Assert.True(arrivals.Problems.Count == 0, string.Join("; ", arrivals.Problems.Take(10)));
        Assert.True(peakWhileStoring - baseline < BacklogBytes / 4, $"relayd's VmRSS grew by {Mib(peakWhileStoring - baseline)} while storing a backlog of {Mib(BacklogBytes)}: not bounded");
        Assert.True(peakWhileDelivering - baseline < BacklogBytes / 4, $"relayd's VmRSS grew by {Mib(peakWhileDelivering - baseline)} while delivering a backlog of {Mib(BacklogBytes)}: not bounded");
    }

    /// <summary>Sends <see cref="EnvelopeCount"/> new envelopes with up to <see cref="SendWindow"/> unanswered; returns the first refusal.</summary>
    private static async Task<RelayException?> SendAllAsync(RelayClient alpha, ConversationLedger ledger)
    {
        var inFlight = new Queue<(ConversationLedger.Sent Sent, Task<Ack> Ack)>();
        int started = 0;
        try
        {
            while (started < EnvelopeCount || inFlight.Count > 0)
            {
                while (inFlight.Count < SendWindow && started < EnvelopeCount)
                {
                    ConversationLedger.Sent sent = ledger.Next();
                    started++;
                    inFlight.Enqueue((sent, alpha.SendAsync(sent.Envelope, CancellationToken.None)));
                }

                (ConversationLedger.Sent oldest, Task<Ack> answer) = inFlight.Dequeue();
                oldest.Ack = await answer.Within(60);
            }

            return null;
        }
        catch (RelayException ex)
        {
            return ex;
        }
    }

    /// <summary>Consumes and acknowledges until every acked envelope arrived, or nothing new arrived for 30 s.</summary>
    private static async Task ReceiveAllAsync(RelayClient beta, ArrivalLog arrivals)
    {
        var ids = new List<ulong>(1024);
        while (arrivals.Distinct < EnvelopeCount)
        {
            using var quiet = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
            quiet.CancelAfter(TimeSpan.FromSeconds(30));
            try
            {
                if (!await beta.Deliveries.WaitToReadAsync(quiet.Token))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
            {
                return;
            }

            while (ids.Count < 1024 && beta.Deliveries.TryRead(out Deliver? delivery))
            {
                arrivals.Record(delivery);
                ids.Add(delivery.DeliveryId);
            }

            await beta.AcknowledgeAsync(ids, CancellationToken.None);
            ids.Clear();
        }
    }


    private static string Detail(ProcessMemory memory) =>
        $"peak RssAnon {Mib(memory.PeakAnonBytes)}, peak RssFile {Mib(memory.PeakFileBytes)}, {memory.Samples} samples";

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):F1} MiB");
}
