using Relayd.Protocol.V1;

namespace Relayd.Transport;

/// <summary>Key bundles, routed live (Interop/KeyBundles): this file parses and replies; the exchange routes.</summary>
internal sealed partial class PartnerSession : Interop.ILiveSession
{
    private void HandleKeyBundleRequest(KeyBundleRequest request)
    {
        // Null: forwarded; the target's answer or the relay's timeout comes through the outbox.
        if (_services.KeyBundles.Request(this, request, _services) is { } refusal)
        {
            LogLiveRefusal(nameof(KeyBundleRequest), refusal.Code, refusal.Detail);
            WriteFrame(new Frame { KeyBundleResponse = refusal });
        }
    }

    private void HandleKeyBundleResponse(KeyBundleResponse response)
    {
        if (_services.KeyBundles.Answer(this, response) is { } refusal)
        {
            LogLiveRefusal(nameof(KeyBundleResponse), refusal.Code, refusal.Detail);
            WriteFrame(new Frame { Error = refusal });
        }
    }

    /// <summary>Logs a refused interop frame, once per partner, frame and code per interval (repeats are summarized).</summary>
    private void LogLiveRefusal(string frame, ErrorCode code, string detail)
    {
        if (_services.Refusals.Envelopes.ShouldLog($"{Partner.Id} ({frame})", code, Environment.TickCount64))
        {
            Diagnostics.RelayLog.LiveFrameRefused(_logger, frame, Partner.Id, code, detail);
        }
    }
}
