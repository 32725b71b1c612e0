using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Tests.Infrastructure;

/// <summary>
/// What a sending partner sent, in order, over several conversations (recipient users of one recipient partner), and
/// which of it the relay acknowledged. Envelopes not yet acknowledged are resent in their original order.
/// </summary>
/// <remarks>Thread-safe: a sending loop adds to it while a receiving loop looks envelopes up.</remarks>
internal sealed class ConversationLedger
{
    private readonly Lock _lock = new();
    private readonly List<Sent> _inOrder = [];
    private readonly Dictionary<ByteString, Sent> _byId = [];
    private readonly long[] _nextSequence;
    private readonly string _from;
    private readonly string _to;
    private readonly int _ciphertextBytes;
    private int _nextConversation;
    private int _firstUnacked;

    public ConversationLedger(string from, string to, int conversations, int ciphertextBytes)
    {
        _from = from;
        _to = to;
        _ciphertextBytes = ciphertextBytes;
        _nextSequence = new long[conversations];
    }

    /// <summary>One envelope: its conversation (recipient user index) and its place in that conversation.</summary>
    public sealed record Sent(Envelope Envelope, int Conversation, long Sequence)
    {
        public Ack? Ack { get; set; }

        /// <summary>Acknowledged as a duplicate: an earlier send of it was stored, but its Ack was lost with the process.</summary>
        public bool AckedOnResend { get; set; }

        public int Attempts { get; set; }
    }

    public int Conversations => _nextSequence.Length;

    public int SentCount
    {
        get
        {
            lock (_lock)
            {
                return _inOrder.Count;
            }
        }
    }

    public int AckedCount => Acked.Count;

    /// <summary>A snapshot of the acknowledged envelopes, in send order.</summary>
    public List<Sent> Acked
    {
        get
        {
            lock (_lock)
            {
                return [.. _inOrder.Where(s => s.Ack is not null)];
            }
        }
    }

    public static string User(int conversation) => $"user-{conversation}";

    /// <summary>A new envelope for the next conversation in turn, numbered after the last one of that conversation.</summary>
    public Sent Next()
    {
        int conversation = _nextConversation;
        _nextConversation = (_nextConversation + 1) % _nextSequence.Length;
        long sequence = _nextSequence[conversation]++;
        Envelope envelope = Envelopes.New(_from, _to, toUser: User(conversation), ciphertext: Envelopes.RandomCiphertext(_ciphertextBytes));
        var sent = new Sent(envelope, conversation, sequence);
        lock (_lock)
        {
            _inOrder.Add(sent);
            _byId.Add(envelope.MessageId, sent);
        }

        return sent;
    }

    /// <summary>Everything sent and not yet acknowledged, in the order it was first sent.</summary>
    public List<Sent> Unacked()
    {
        lock (_lock)
        {
            while (_firstUnacked < _inOrder.Count && _inOrder[_firstUnacked].Ack is not null)
            {
                _firstUnacked++;
            }

            return [.. _inOrder.Skip(_firstUnacked).Where(s => s.Ack is null)];
        }
    }

    public Sent? Find(ByteString messageId)
    {
        lock (_lock)
        {
            return _byId.GetValueOrDefault(messageId);
        }
    }
}
