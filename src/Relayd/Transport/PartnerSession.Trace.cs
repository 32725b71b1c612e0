using System.Buffers.Binary;
using Relayd.Protocol.V1;
using Relayd.Support.Trace;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private int _traceInFlight;

    /// <summary>
    /// TraceRequest (docs/protocol.md, "Trace"): the events of a message the asking partner sent or received. The
    /// segments are scanned off the reader loop, one request at a time per session and one scan at a time per relay
    /// (a partner cannot burn the relay's CPU); the reply goes through the outbox. A message the partner neither sent
    /// nor received gets what an unknown id gets: no events, the same bytes.
    /// </summary>
    private void HandleTraceRequest(TraceRequest request)
    {
        if (_services.Trace is not { } trace)
        {
            // Not fatal: the session goes on; the request's id says which request was refused.
            WriteFrame(new Frame { Error = new Error { Code = ErrorCode.UnexpectedFrame, Detail = "the per-message trace is off on this relay", RequestId = request.RequestId } });
            return;
        }

        if (Interlocked.Exchange(ref _traceInFlight, 1) != 0)
        {
            WriteFrame(new Frame { Error = new Error { Code = ErrorCode.RateLimited, Detail = "one TraceRequest at a time per session: wait for the reply to the last one", RequestId = request.RequestId, RetryAfterMs = 100 } });
            return;
        }

        _ = AnswerTraceAsync(trace, request);
    }

    private async Task AnswerTraceAsync(TraceRecorder trace, TraceRequest request)
    {
        Frame answer;
        try
        {
            MessageTrace? message = null;
            if (request.MessageId.Length == 16)
            {
                await trace.PartnerScans.WaitAsync();
                try
                {
                    message = await TraceQuery.MessageAsync(trace, request.SenderPartner, BinaryPrimitives.ReadUInt128BigEndian(request.MessageId.Span), CancellationToken.None);
                }
                finally
                {
                    trace.PartnerScans.Release();
                }
            }

            answer = new Frame { TraceReply = TraceReplies.For(message, Partner.Id, request.RequestId) };
        }
        catch (Exception ex)
        {
            // Nothing escapes this task (it runs beside the reader): the partner is told to retry, the admin why.
            TraceLog.TraceQueryFailed(_services.Logger, Partner.Id, $"{ex.GetType().Name}: {ex.Message}");
            answer = new Frame { Error = new Error { Code = ErrorCode.RetryLater, Detail = "the relay could not read its trace", RequestId = request.RequestId, RetryAfterMs = 1000 } };
        }

        Volatile.Write(ref _traceInFlight, 0);
        TryEnqueueFrame(answer);
    }
}
