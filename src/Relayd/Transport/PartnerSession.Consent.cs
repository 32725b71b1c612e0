using Relayd.Diagnostics;
using Relayd.Interop.Consent;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

internal sealed partial class PartnerSession
{
    private int _consentAnswersPending;

    /// <summary>ConsentUpdates whose answer waits for the consent log: the writer stays up for them (as for Acks) when the partner closes.</summary>
    private bool ConsentAnswersPending => Volatile.Read(ref _consentAnswersPending) > 0;

    /// <summary>
    /// A ConsentUpdate: checked, logged and put in force by the consent store; a refusal is answered at once (Error
    /// with request_id), the ConsentAck once the log has made the update durable, through the outbox so that the
    /// reader never waits for the disk.
    /// </summary>
    private void HandleConsentUpdate(ConsentUpdate update)
    {
        ConsentStore consent = _services.Consent ?? throw NotYetCarried(nameof(ConsentUpdate));
        ConsentSubmission submitted = consent.Submit(Partner, update);
        if (!submitted.Accepted)
        {
            ConsentLog.ConsentUpdateRefused(_logger, update.RequestId, Partner.Id, submitted.Refusal, submitted.Detail!);
            WriteFrame(new Frame { Error = new Error { Code = submitted.Refusal, Detail = submitted.Detail, RequestId = update.RequestId } });
            return;
        }

        Interlocked.Increment(ref _consentAnswersPending);
        _ = AnswerConsentWhenDurableAsync(consent, submitted, update.RequestId, (uint)update.Changes.Count);
    }

    private async Task AnswerConsentWhenDurableAsync(ConsentStore consent, ConsentSubmission submitted, ulong requestId, uint changes)
    {
        Frame answer = await consent.WhenDurableAsync(submitted.End)
            ? new Frame { ConsentAck = new ConsentAck { RequestId = requestId, Changes = changes } }
            : new Frame
            {
                Error = new Error
                {
                    Code = ErrorCode.RetryLater,
                    RequestId = requestId,
                    Detail = "the consent log failed before the update was durable: it may not survive a restart; resend it after the relay restarted",
                },
            };
        if (_abort.IsCancellationRequested)
        {
            ConsentLog.ConsentAnswerDropped(_logger, requestId, Partner.Id);
        }
        else
        {
            // A reply to this session's own request: not bounded like frames routed from other sessions, and still
            // sent while the session closes (as Acks are).
            Interlocked.Increment(ref _outboxCount);
            _outbox.Enqueue(answer);
        }

        Interlocked.Decrement(ref _consentAnswersPending);
        _writerSignal.Set(); // the writer may be waiting for this answer before it closes
    }

    /// <summary>Logs how many of the envelopes the queue just dropped were refused because a user revoked (rare: only after a revoke).</summary>
    private void CountRevokedReceipts(List<Routing.SettledEnvelope> settled)
    {
        int revoked = 0;
        foreach (Routing.SettledEnvelope envelope in settled)
        {
            if (envelope.Receipt.Code == ErrorCode.NotOptedIn)
            {
                revoked++;
            }
        }

        if (revoked > 0)
        {
            ConsentLog.ConsentQueuedRefused(_logger, revoked, Partner.Id);
        }
    }
}
