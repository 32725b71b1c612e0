using System.Buffers;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Relayd.Protocol.V1;
using Relayd.Routing;
using Relayd.Storage;
using Relayd.Support.Trace;

namespace Relayd.Tests.Support.Trace;

/// <summary>
/// DURABLE is written once per batch of a session's Acks, not once per envelope: the query gives each message the
/// first batch of its own session whose marks cover the mark its ACCEPTED kept, and never one of a later relay
/// process (which numbers sessions from 1 again and, after a crash, may reuse log positions).
/// </summary>
public sealed class TraceDurableGroupTests : IDisposable
{
    private const long T0 = 1_800_000_000_000;
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeMilliseconds(T0));
    private readonly PartnerInfo _alpha = new(new PartnerOptions { Id = "alpha" }, new RelayLimits());
    private readonly PartnerInfo _beta = new(new PartnerOptions { Id = "beta" }, new RelayLimits());
    private readonly DirectoryInfo _wal = Directory.CreateTempSubdirectory("relayd-trace-durable-");

    public void Dispose() => _wal.Delete(recursive: true);

    [Fact]
    public async Task A_batch_of_acks_makes_durable_exactly_the_messages_of_its_session_whose_marks_it_covers()
    {
        using TraceRecorder trace = TraceRecorder.Open(new TraceOptions(), _wal.FullName, _clock, NullLogger.Instance);
        Accept(trace, 1, session: 1, mark: 100, T0);
        Accept(trace, 2, session: 1, mark: 200, T0);
        Accept(trace, 3, session: 1, mark: 300, T0 + 1);
        Accept(trace, 4, session: 2, mark: 250, T0 + 1);
        trace.EnvelopesDurable(_alpha, 1, new DurableMark(100), new DurableMark(200), 2, T0 + 2);

        Assert.Equal(T0 + 2, await DurableAtAsync(trace, 1));
        Assert.Equal(T0 + 2, await DurableAtAsync(trace, 2));
        Assert.Null(await DurableAtAsync(trace, 3)); // beyond the batch: its Ack is not sent yet
        Assert.Null(await DurableAtAsync(trace, 4)); // the other session's, though its mark is inside the range

        trace.EnvelopesDurable(_alpha, 1, new DurableMark(300), new DurableMark(300), 1, T0 + 5);
        trace.EnvelopesDurable(_alpha, 2, new DurableMark(250), new DurableMark(250), 1, T0 + 6);
        Assert.Equal(T0 + 5, await DurableAtAsync(trace, 3));
        Assert.Equal(T0 + 6, await DurableAtAsync(trace, 4));
        MessageTrace? first = await TraceQuery.MessageAsync(trace, "alpha", 1, TestContext.Current.CancellationToken);
        Assert.Equal([TraceEventKind.TraceAccepted, TraceEventKind.TraceDurable], first!.Events.Select(e => e.Kind));
        Assert.Equal(1, first.Events[1].Session);

        // A batch record names no message: it is no event of message id 0.
        Assert.Null(await TraceQuery.MessageAsync(trace, "alpha", 0, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_later_relay_process_never_makes_an_earlier_process_message_durable()
    {
        using (TraceRecorder before = TraceRecorder.Open(new TraceOptions(), _wal.FullName, _clock, NullLogger.Instance))
        {
            Accept(before, 5, session: 1, mark: 500, T0);
            await before.FlushAsync(); // the process ends before its Ack: no DURABLE
        }

        _clock.Advance(TimeSpan.FromSeconds(10));
        long now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        using TraceRecorder after = TraceRecorder.Open(new TraceOptions(), _wal.FullName, _clock, NullLogger.Instance);
        Accept(after, 6, session: 1, mark: 550, now); // the same session id, a log position the lost tail had
        after.EnvelopesDurable(_alpha, 1, new DurableMark(400), new DurableMark(600), 2, now + 1);

        Assert.Null(await DurableAtAsync(after, 5));
        Assert.Equal(now + 1, await DurableAtAsync(after, 6));
    }

    private void Accept(TraceRecorder trace, UInt128 id, long session, ulong mark, long atMs) => trace.EnvelopeAccepted(new AcceptedEnvelope
    {
        Sender = _alpha, ConnectionId = session, MessageId = id, Recipient = _beta, SenderUser = new ReadOnlySequence<byte>("alice"u8.ToArray()),
        RecipientUser = new ReadOnlySequence<byte>("bob"u8.ToArray()), Ciphertext = ReadOnlySequence<byte>.Empty, FrameBytes = 100, Shard = 0,
        LogOnly = false, AcceptedAtMs = atMs, DurableAt = new DurableMark(mark),
    });

    private static async Task<long?> DurableAtAsync(TraceRecorder trace, UInt128 id)
    {
        MessageTrace? message = await TraceQuery.MessageAsync(trace, "alpha", id, TestContext.Current.CancellationToken);
        Assert.NotNull(message);
        Assert.Single(message.Events, e => e.Kind == TraceEventKind.TraceAccepted);
        return message.Events.SingleOrDefault(e => e.Kind == TraceEventKind.TraceDurable)?.AtMs;
    }
}
