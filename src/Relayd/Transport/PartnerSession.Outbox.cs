using System.Collections.Concurrent;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

/// <summary>
/// Frames other sessions route to this one live (key-bundle requests and answers, typing notices, abuse notices):
/// queued from any thread, written by this session's writer. Bounded: a partner that does not read them loses the
/// ephemeral ones (the caller decides what a full outbox means for its frame), never the relay's memory.
/// </summary>
internal sealed partial class PartnerSession
{
    /// <summary>Frames queued and not yet written, at most.</summary>
    public const int OutboxCapacity = 4096;

    private readonly ConcurrentQueue<Frame> _outbox = new();
    private int _outboxCount;

    /// <summary>True once the session is closing (GoAway or a fatal error requested): nothing new is routed to it.</summary>
    public bool IsClosing => Volatile.Read(ref _closeRequested) != 0 || _abort.IsCancellationRequested;

    /// <summary>Queues a frame for this session's writer; false when the outbox is full or the session is closing.</summary>
    public bool TryEnqueueFrame(Frame frame)
    {
        if (IsClosing || Interlocked.Increment(ref _outboxCount) > OutboxCapacity)
        {
            if (!IsClosing)
            {
                Interlocked.Decrement(ref _outboxCount);
            }

            return false;
        }

        _outbox.Enqueue(frame);
        _writerSignal.Set();
        return true;
    }

    private async ValueTask<bool> WriteOutboxAsync(CancellationToken abort)
    {
        bool wrote = false;
        while (_outbox.TryDequeue(out Frame? frame))
        {
            Interlocked.Decrement(ref _outboxCount);
            if (OnOutboxFrame(frame))
            {
                await _stream.WriteAsync(frame.ToDelimitedArray(), abort);
                wrote = true;
            }
        }

        return wrote;
    }

    /// <summary>
    /// Last look at a queued frame before it is written; false drops it (a typing notice older than its 10 s).
    /// </summary>
    private bool OnOutboxFrame(Frame frame) => frame.BodyCase switch
    {
        Frame.BodyOneofCase.Typing => TypingStillFresh(frame.Typing),
        _ => true,
    };
}
