using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    // 1 while this session's evidence lookup runs: a lookup may scan files, so a session has one at a time.
    private int _evidenceLookups;

    /// <summary>
    /// EvidenceRequest (docs/protocol.md, "Evidence"; docs/evidence.md): the proofs for a message this partner sent or
    /// received. The store decides who may know before anything else, so a message of other partners gets exactly the
    /// bytes of an unknown id. Answered off the reader loop (a lookup may read the files) through the outbox.
    /// </summary>
    private void HandleEvidenceRequest(EvidenceRequest request)
    {
        if (_services.Evidence is not { } evidence)
        {
            // Not fatal: the session goes on; the request's id says which request was refused.
            WriteFrame(new Frame { Error = new Error { Code = ErrorCode.UnexpectedFrame, Detail = "signed delivery evidence is off on this relay", RequestId = request.RequestId } });
            return;
        }

        if (Interlocked.Exchange(ref _evidenceLookups, 1) == 1)
        {
            WriteFrame(new Frame { Error = new Error { Code = ErrorCode.RateLimited, Detail = "one EvidenceRequest at a time per session: wait for the answer to the previous one", RequestId = request.RequestId, RetryAfterMs = 100 } });
            return;
        }

        string asker = Partner.Id;
        ulong requestId = request.RequestId;
        string sender = request.SenderPartner;
        ReadOnlyMemory<byte> messageId = request.MessageId.Memory;
        (ulong Tree, ulong Size) consistencyFrom = (request.ConsistencyTreeId, request.ConsistencyFromSize);
        _ = Task.Run(async () =>
        {
            EvidenceReply reply;
            try
            {
                reply = (await evidence.LookupAsync(asker, sender, messageId)).ToReply(requestId);
                if (consistencyFrom.Size is > 0 and <= long.MaxValue && await evidence.ConsistencyAsync(consistencyFrom.Tree, (long)consistencyFrom.Size) is { } consistency)
                {
                    reply.ConsistencyTreeHead = Google.Protobuf.ByteString.CopyFrom(consistency.Head.Head);
                    reply.ConsistencyTreeHeadSignature = Google.Protobuf.ByteString.CopyFrom(consistency.Head.Signature);
                    reply.ConsistencyProof.AddRange(consistency.Proof.Select(Google.Protobuf.ByteString.CopyFrom));
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ObjectDisposedException)
            {
                // The store could not read its files (or is closing): a retry may succeed; nothing about the message is said.
                reply = Support.Evidence.EvidenceAnswer.None.ToReply(requestId);
            }
            finally
            {
                Volatile.Write(ref _evidenceLookups, 0);
            }

            TryEnqueueFrame(new Frame { EvidenceReply = reply });
        });
    }
}
