using System.Diagnostics;
using System.Globalization;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Durability;

/// <summary>
/// The kill test: an Ack is a promise that survives SIGKILL. The real daemon is killed at random moments while alpha
/// streams envelopes to beta over several conversations and beta consumes; after every restart on the same log the
/// sender resends what was not acknowledged. In the end every acknowledged envelope has reached beta (at least once)
/// and each conversation's first arrivals are in the order they were sent.
/// </summary>
/// <remarks>
/// <c>RELAYD_KILL_CYCLES</c> sets the number of kill cycles (default 50; e.g. <c>RELAYD_KILL_CYCLES=200</c> for the long
/// run). <c>RELAYD_KILL_SEED</c> replays the kill moments of an earlier run (the seed is printed).
/// </remarks>
public sealed class CrashRecoveryTests : IClassFixture<PkiFixture>
{
    private const int DefaultKillCycles = 50;
    private const int Conversations = 8;
    private const int CiphertextBytes = 128;
    private const int SendWindow = 256;
    // The process lives this long after "listening on" before SIGKILL: from "killed while clients connect" up to a
    // few hundred milliseconds of streaming in both directions.
    private const int MaxLifetimeMs = 400;

    private readonly TestPki _pki;

    public CrashRecoveryTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact(Timeout = 30 * 60 * 1000)]
    public async Task Every_acked_envelope_arrives_in_conversation_order_although_relayd_is_killed_with_SIGKILL_at_random_moments()
    {
        int cycles = TestReport.EnvironmentInt("RELAYD_KILL_CYCLES", DefaultKillCycles);
        int seed = TestReport.EnvironmentInt("RELAYD_KILL_SEED", Random.Shared.Next());
        var random = new Random(seed);
        var ledger = new ConversationLedger("alpha", "beta", Conversations, CiphertextBytes);
        var arrivals = new ArrivalLog(ledger);
        var refusals = new List<string>();
        var clock = Stopwatch.StartNew();
        await using var relay = new RelaydProcess(_pki);

        int killedDuringRecovery = 0;
        for (int cycle = 1; cycle <= cycles; cycle++)
        {
            if (random.Next(5) == 0)
            {
                // Now and then a crash while the previous crash is being recovered from, before "listening on".
                relay.Launch();
                await Task.Delay(random.Next(0, 300), TestContext.Current.CancellationToken);
                await relay.KillAsync();
                killedDuringRecovery++;
            }

            await relay.StartAsync();
            int lifetimeMs = random.Next(0, MaxLifetimeMs);
            // Beta is online all along, joins late or stays away, so that acked envelopes are often still waiting in
            // the relay at the kill: those are the ones only the log can save.
            int betaJoinsAfterMs = random.Next(3) switch { 0 => 0, 1 => random.Next(0, lifetimeMs + 1), _ => Timeout.Infinite };
            using var stop = new CancellationTokenSource();
            Task cycleRun = RunCycleAsync(relay, ledger, arrivals, refusals, betaJoinsAfterMs, stop.Token);
            await Task.Delay(lifetimeMs, TestContext.Current.CancellationToken);
            await relay.KillAsync();
            await stop.CancelAsync();
            await cycleRun.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            TestContext.Current.TestOutputHelper?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"cycle {cycle}: killed {lifetimeMs} ms after start, beta {(betaJoinsAfterMs == Timeout.Infinite ? "away" : $"joined after {betaJoinsAfterMs} ms")}; sent {ledger.SentCount}, acked {ledger.AckedCount}, arrived {arrivals.Distinct}"));
        }

        // Last run: no kill. Resend until everything is acknowledged, then beta drains.
        await relay.StartAsync();
        await using RelayClient alpha = await relay.ConnectAsync("alpha", receipts: false);
        await using RelayClient beta = await relay.ConnectAsync("beta", receipts: false);
        using var drained = new CancellationTokenSource();
        Task receiving = ReceiveAsync(beta, arrivals, drained.Token);
        await SendAsync(alpha, ledger, produceNew: false, refusals, TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        int unacked = ledger.Unacked().Count;
        await WaitForAllAckedToArriveAsync(ledger, arrivals, TimeSpan.FromSeconds(60));
        await drained.CancelAsync();
        await receiving;
        int exitCode = await relay.TerminateAsync();

        var lost = ledger.Acked.Where(s => !arrivals.HasArrived(s.Envelope.MessageId)).ToList();
        Report(cycles, killedDuringRecovery, seed, clock.Elapsed, ledger, arrivals, lost.Count, unacked, refusals);
        Assert.True(unacked == 0, $"{unacked} envelopes were still not acknowledged after the last restart");
        Assert.True(lost.Count == 0, $"{lost.Count} acknowledged envelopes never reached beta, e.g. {Describe(lost.Take(5))}");
        Assert.True(arrivals.Problems.Count == 0, $"{arrivals.Problems.Count} ordering/integrity problems: {string.Join("; ", arrivals.Problems.Take(10))}");
        Assert.Equal(0, exitCode);
    }

    /// <summary>One process lifetime: both partners connect, alpha (re)sends, beta consumes, until the kill.</summary>
    private static async Task RunCycleAsync(RelaydProcess relay, ConversationLedger ledger, ArrivalLog arrivals, List<string> refusals, int betaJoinsAfterMs, CancellationToken stop)
    {
        await Task.WhenAll(SendingPartnerAsync(), ReceivingPartnerAsync());

        async Task SendingPartnerAsync()
        {
            try
            {
                await using RelayClient alpha = await relay.ConnectAsync("alpha", receipts: false);
                await SendAsync(alpha, ledger, produceNew: true, refusals, stop);
            }
            catch (Exception ex) when (IsConnectionLoss(ex))
            {
                // Killed while connecting.
            }
        }

        async Task ReceivingPartnerAsync()
        {
            try
            {
                await Task.Delay(betaJoinsAfterMs, stop);
                await using RelayClient beta = await relay.ConnectAsync("beta", receipts: false);
                await ReceiveAsync(beta, arrivals, stop);
            }
            catch (Exception ex) when (IsConnectionLoss(ex))
            {
                // Killed while connecting, or stopped before joining.
            }
        }
    }

    /// <summary>
    /// Resends everything not yet acknowledged, in its original order, then (when <paramref name="produceNew"/>) new
    /// envelopes, keeping up to <see cref="SendWindow"/> unanswered. Returns when the connection is lost, on a refusal,
    /// or (without <paramref name="produceNew"/>) when everything is answered.
    /// </summary>
    private static async Task SendAsync(RelayClient alpha, ConversationLedger ledger, bool produceNew, List<string> refusals, CancellationToken stop)
    {
        var inFlight = new Queue<(ConversationLedger.Sent Sent, Task<Ack> Ack)>();
        IEnumerator<ConversationLedger.Sent> toSend = Resends(ledger, produceNew, stop).GetEnumerator();
        try
        {
            while (true)
            {
                while (inFlight.Count < SendWindow && toSend.MoveNext())
                {
                    ConversationLedger.Sent sent = toSend.Current;
                    sent.Attempts++;
                    inFlight.Enqueue((sent, alpha.SendAsync(sent.Envelope, CancellationToken.None)));
                }

                if (inFlight.Count == 0)
                {
                    return;
                }

                (ConversationLedger.Sent oldest, Task<Ack> answer) = inFlight.Dequeue();
                Ack ack = await answer;
                oldest.Ack = ack;
                oldest.AckedOnResend = ack.Duplicate;
            }
        }
        catch (RelayException ex) when (!IsConnectionLoss(ex))
        {
            // Not expected with a write-ahead log; stop this run so a refused envelope is not overtaken by later ones
            // of its conversation more than the window allows.
            lock (refusals)
            {
                refusals.Add($"{ex.Code} (retry after {ex.RetryAfterMs} ms): {ex.Detail}");
            }
        }
        catch (Exception ex) when (IsConnectionLoss(ex))
        {
            // The relay was killed: whatever is unanswered is resent after the restart.
        }
        finally
        {
            // Record the answers that did arrive before the loss; the rest stay unacknowledged.
            foreach ((ConversationLedger.Sent sent, Task<Ack> answer) in inFlight)
            {
                if (answer.IsCompletedSuccessfully)
                {
                    sent.Ack = answer.Result;
                    sent.AckedOnResend = answer.Result.Duplicate;
                }
                else
                {
                    _ = answer.Exception; // observed
                }
            }
        }
    }

    private static IEnumerable<ConversationLedger.Sent> Resends(ConversationLedger ledger, bool produceNew, CancellationToken stop)
    {
        foreach (ConversationLedger.Sent sent in ledger.Unacked())
        {
            yield return sent;
        }

        while (produceNew && !stop.IsCancellationRequested)
        {
            yield return ledger.Next();
        }
    }

    /// <summary>Consumes deliveries in batches and acknowledges each batch once recorded, until stopped or disconnected.</summary>
    private static async Task ReceiveAsync(RelayClient beta, ArrivalLog arrivals, CancellationToken stop)
    {
        try
        {
            await arrivals.ReceiveAsync(beta, stop);
        }
        catch (Exception ex) when (ex is OperationCanceledException || IsConnectionLoss(ex))
        {
            // Stopped or killed.
        }
    }

    private static async Task WaitForAllAckedToArriveAsync(ConversationLedger ledger, ArrivalLog arrivals, TimeSpan limit)
    {
        var deadline = Stopwatch.StartNew();
        List<ConversationLedger.Sent> acked = [.. ledger.Acked];
        while (deadline.Elapsed < limit)
        {
            int distinct = arrivals.Distinct;
            if (acked.All(s => arrivals.HasArrived(s.Envelope.MessageId)))
            {
                // A moment more to see any late redeliveries in the duplicate count.
                await Task.Delay(300, TestContext.Current.CancellationToken);
                return;
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
            if (arrivals.Distinct == distinct && deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                return; // Nothing new for a while: what is missing is lost.
            }
        }
    }

    private static void Report(int cycles, int killedDuringRecovery, int seed, TimeSpan elapsed, ConversationLedger ledger, ArrivalLog arrivals, int lost, int unacked, List<string> refusals)
    {
        string wal = RelaydProcess.WithoutWal ? " (RELAYD_DURABILITY_WITHOUT_WAL=1: no [wal] table)" : "";
        TestReport.WriteLine(string.Create(CultureInfo.InvariantCulture, $"""
            kill test{wal}: {cycles} SIGKILL cycles (+{killedDuringRecovery} kills during start-up/recovery) in {elapsed.TotalSeconds:F1} s (seed {seed}; RELAYD_KILL_CYCLES / RELAYD_KILL_SEED to change)
              envelopes sent: {ledger.SentCount} over {ledger.Conversations} conversations, acked: {ledger.AckedCount} (of which acked as duplicate on resend: {ledger.Acked.Count(s => s.AckedOnResend)}), never acked: {unacked}
              lost (acked, never delivered): {lost}
              delivered to beta: {arrivals.Deliveries}, distinct: {arrivals.Distinct}, duplicates received before dedup: {arrivals.Duplicates}
              order/integrity problems: {arrivals.Problems.Count}{(arrivals.Problems.Count > 0 ? " e.g. " + string.Join("; ", arrivals.Problems.Take(3)) : "")}
              refusals: {refusals.Count}{(refusals.Count > 0 ? " e.g. " + refusals[0] : "")}
            """));
    }

    private static string Describe(IEnumerable<ConversationLedger.Sent> sent) =>
        string.Join(", ", sent.Select(s => $"conversation {s.Conversation} #{s.Sequence} (acked{(s.AckedOnResend ? " as duplicate" : "")} after {s.Attempts} sends)"));

    private static bool IsConnectionLoss(Exception ex) => ex switch
    {
        RelayException relay => relay.Code is ErrorCode.Unspecified or ErrorCode.ShuttingDown,
        IOException or ObjectDisposedException or System.Net.Sockets.SocketException or System.Security.Authentication.AuthenticationException => true,
        OperationCanceledException => true,
        System.Threading.Channels.ChannelClosedException => true,
        AggregateException aggregate => aggregate.InnerExceptions.All(IsConnectionLoss),
        _ => false,
    };

}
