using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>Per-message trace (docs/protocol.md, "Trace"): where a message this partner sent or received is, at the relay.</summary>
public sealed partial class RelayClient
{
    // Request ids of trace queries: a range of their own (health uses 0x48.., capability queries count up from
    // 1 << 62), so that an Error's request_id finds the one request it answers.
    private const ulong FirstTraceRequestId = 0x4900_0000_0000_0000;

    private readonly Internal.PendingRequests<TraceReply> _pendingTrace = new(FirstTraceRequestId);

    /// <summary>
    /// The relay's events for message <paramref name="messageId"/> of <paramref name="senderPartner"/>, oldest first.
    /// Answered only when this partner is the message's sender or recipient partner: for any other message, and for
    /// an unknown one, the reply has no events (the same bytes either way).
    /// </summary>
    /// <exception cref="RelayException">UNEXPECTED_FRAME (the relay keeps no trace), RATE_LIMITED (one trace query at a time per session), or the connection ended.</exception>
    public async Task<TraceReply> TraceAsync(string senderPartner, ReadOnlyMemory<byte> messageId, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(senderPartner);
        if (_failure is { } failure)
        {
            throw failure;
        }

        (ulong id, Task<TraceReply> answer) = _pendingTrace.Begin();
        try
        {
            WriteInteropFrame(new Frame { TraceRequest = new TraceRequest { RequestId = id, SenderPartner = senderPartner, MessageId = ByteString.CopyFrom(messageId.Span) } });
            return await AnswerOrEndAsync(answer, cancellationToken);
        }
        finally
        {
            _pendingTrace.End(id);
        }
    }

    private void OnTraceReply(TraceReply reply) => _pendingTrace.Answer(reply.RequestId, reply);

    private bool FailTrace(Error error) => _pendingTrace.Fail(error);
}
