using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>Partner health (docs/protocol.md, "Health"): how the relay sees this partner, "is it us or them?".</summary>
public sealed partial class RelayClient
{
    // Request ids of health queries: a range of their own (capability queries count up from 1 << 62), so that an
    // Error's request_id finds the one request it answers.
    private const ulong FirstHealthRequestId = 0x4800_0000_0000_0000;

    private readonly Internal.PendingRequests<HealthReply> _pendingHealth = new(FirstHealthRequestId);

    /// <summary>
    /// This partner's health as the relay sees it, about this partner only: its sessions, envelopes accepted and
    /// refused (by code), the backlog toward it, delivery latency to it, media failures, key-bundle timeouts.
    /// </summary>
    /// <exception cref="RelayException">UNEXPECTED_FRAME (the relay does not record health), or the connection ended.</exception>
    public async Task<HealthReply> HealthAsync(CancellationToken cancellationToken = default)
    {
        if (_failure is { } failure)
        {
            throw failure;
        }

        (ulong id, Task<HealthReply> answer) = _pendingHealth.Begin();
        try
        {
            WriteInteropFrame(new Frame { HealthRequest = new HealthRequest { RequestId = id } });
            return await AnswerOrEndAsync(answer, cancellationToken);
        }
        finally
        {
            _pendingHealth.End(id);
        }
    }

    private void OnHealthReply(HealthReply reply) => _pendingHealth.Answer(reply.RequestId, reply);

    private bool FailHealth(Error error) => _pendingHealth.Fail(error);
}
