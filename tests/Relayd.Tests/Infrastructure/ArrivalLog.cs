using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// What a recipient received: the first arrival of each message id, how many arrived again (at-least-once
/// duplicates), and whether first arrivals kept each conversation's order.
/// </summary>
/// <remarks>Thread-safe: a receiving loop records while the test checks what arrived.</remarks>
internal sealed class ArrivalLog
{
    private readonly Lock _lock = new();
    private readonly ConversationLedger _ledger;
    private readonly HashSet<ByteString> _arrived = [];
    private readonly Dictionary<int, long> _lastFirstArrival = [];
    private readonly List<string> _problems = [];

    public ArrivalLog(ConversationLedger ledger) => _ledger = ledger;

    /// <summary>
    /// Records every delivery <paramref name="recipient"/> receives and acknowledges them in batches of up to 1024,
    /// each once recorded, until <paramref name="stop"/> (OperationCanceledException) or the connection ends.
    /// </summary>
    public async Task ReceiveAsync(Relayd.Protocol.RelayClient recipient, CancellationToken stop)
    {
        var ids = new List<ulong>(1024);
        while (await recipient.Deliveries.WaitToReadAsync(stop))
        {
            while (ids.Count < 1024 && recipient.Deliveries.TryRead(out Deliver? delivery))
            {
                Record(delivery);
                ids.Add(delivery.DeliveryId);
            }

            await recipient.AcknowledgeAsync(ids, CancellationToken.None);
            ids.Clear();
        }
    }

    public int Distinct
    {
        get
        {
            lock (_lock)
            {
                return _arrived.Count;
            }
        }
    }

    public int Deliveries { get; private set; }

    /// <summary>Deliveries of a message id that had already arrived (the relay's at-least-once window).</summary>
    public int Duplicates { get; private set; }

    /// <summary>Out-of-order first arrivals, unknown ids and altered envelopes, described (a snapshot).</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_lock)
            {
                return [.. _problems];
            }
        }
    }

    public bool HasArrived(ByteString messageId)
    {
        lock (_lock)
        {
            return _arrived.Contains(messageId);
        }
    }

    public void Record(Deliver delivery)
    {
        lock (_lock)
        {
            RecordUnderLock(delivery);
        }
    }

    private void RecordUnderLock(Deliver delivery)
    {
        Deliveries++;
        Envelope envelope = delivery.Envelope;
        if (!_arrived.Add(envelope.MessageId))
        {
            Duplicates++;
            return;
        }

        ConversationLedger.Sent? sent = _ledger.Find(envelope.MessageId);
        if (sent is null)
        {
            _problems.Add($"unknown message id {Convert.ToHexString(envelope.MessageId.Span)} delivered");
            return;
        }

        if (!sent.Envelope.Equals(envelope))
        {
            _problems.Add($"conversation {sent.Conversation} #{sent.Sequence}: the delivered envelope differs from the one sent");
        }

        long last = _lastFirstArrival.GetValueOrDefault(sent.Conversation, -1);
        if (sent.Sequence <= last)
        {
            _problems.Add($"conversation {sent.Conversation}: #{sent.Sequence} first arrived after #{last}");
        }
        else
        {
            _lastFirstArrival[sent.Conversation] = sent.Sequence;
        }
    }
}
