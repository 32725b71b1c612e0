using Google.Protobuf;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>Signed delivery evidence (docs/protocol.md, "Evidence"; docs/evidence.md): proofs either partner of a message can check offline.</summary>
public sealed partial class RelayClient
{
    // Request ids of evidence queries: a range of their own, like health's, so an Error finds the one request it answers.
    private const ulong FirstEvidenceRequestId = 0x4A00_0000_0000_0000;

    private readonly Internal.PendingRequests<EvidenceReply> _pendingEvidence = new(FirstEvidenceRequestId);

    /// <summary>
    /// The relay's signed evidence for message <paramref name="messageId"/> of <paramref name="senderPartner"/>, which
    /// this partner sent or received: the accepted statement's proof and, once delivered (or expired, or refused), the delivery
    /// statement's. No proofs: unknown to the relay, or not this partner's message (the same answer). RetryAfterMs &gt; 0:
    /// a statement exists but no signed tree head covers it yet. Check a proof with the key in <see cref="Welcome"/>
    /// (EvidencePublicKey), save it with <see cref="EvidenceProofFile"/> for <c>relayd evidence verify</c>.
    /// </summary>
    /// <exception cref="RelayException">UNEXPECTED_FRAME (the relay signs no evidence), RATE_LIMITED (one at a time), or the connection ended.</exception>
    public Task<EvidenceReply> EvidenceAsync(string senderPartner, ReadOnlyMemory<byte> messageId, CancellationToken cancellationToken = default) =>
        RequestEvidenceAsync(new EvidenceRequest { SenderPartner = senderPartner, MessageId = ByteString.CopyFrom(messageId.Span) }, cancellationToken);

    /// <summary>
    /// As <see cref="EvidenceAsync(string, ReadOnlyMemory{byte}, CancellationToken)"/>, with the request's other fields:
    /// ConsistencyTreeId and ConsistencyFromSize (a signed head kept earlier) ask for the consistency proof from it to
    /// that tree's newest head. Its request id is set here.
    /// </summary>
    /// <exception cref="RelayException">As the other overload.</exception>
    public async Task<EvidenceReply> RequestEvidenceAsync(EvidenceRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_failure is { } failure)
        {
            throw failure;
        }

        (ulong id, Task<EvidenceReply> answer) = _pendingEvidence.Begin();
        try
        {
            EvidenceRequest sent = request.Clone();
            sent.RequestId = id;
            WriteInteropFrame(new Frame { EvidenceRequest = sent });
            return await AnswerOrEndAsync(answer, cancellationToken);
        }
        finally
        {
            _pendingEvidence.End(id);
        }
    }

    private void OnEvidenceReply(EvidenceReply reply) => _pendingEvidence.Answer(reply.RequestId, reply);

    private bool FailEvidence(Error error) => _pendingEvidence.Fail(error);
}
