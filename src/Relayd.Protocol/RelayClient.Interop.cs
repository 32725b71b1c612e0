using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>
/// The interop frames besides envelopes and media (docs/protocol.md, "Interop"): each capability has its own file
/// (RelayClient.Consent.cs, .KeyBundles.cs, .Capabilities.cs, .Typing.cs, .Abuse.cs); this routes the relay's frames
/// to them.
/// </summary>
public sealed partial class RelayClient
{
    private async ValueTask DispatchInteropAsync(Frame frame, CancellationToken cancellationToken)
    {
        switch (frame.BodyCase)
        {
            case Frame.BodyOneofCase.ConsentAck:
                OnConsentAck(frame.ConsentAck);
                break;
            case Frame.BodyOneofCase.KeyBundleRequest:
                await OnKeyBundleRequestAsync(frame.KeyBundleRequest, cancellationToken);
                break;
            case Frame.BodyOneofCase.KeyBundleResponse:
                OnKeyBundleResponse(frame.KeyBundleResponse);
                break;
            case Frame.BodyOneofCase.Capabilities:
                OnCapabilities(frame.Capabilities);
                break;
            case Frame.BodyOneofCase.Typing:
                await OnTypingAsync(frame.Typing, cancellationToken);
                break;
            case Frame.BodyOneofCase.AbuseReportAck:
                OnAbuseReportAck(frame.AbuseReportAck);
                break;
            case Frame.BodyOneofCase.AbuseNotice:
                await OnAbuseNoticeAsync(frame.AbuseNotice, cancellationToken);
                break;
            case Frame.BodyOneofCase.HealthReply:
                OnHealthReply(frame.HealthReply);
                break;
            case Frame.BodyOneofCase.TraceReply:
                OnTraceReply(frame.TraceReply);
                break;
            case Frame.BodyOneofCase.EvidenceReply:
                OnEvidenceReply(frame.EvidenceReply);
                break;
        }
    }

    /// <summary>An Error that answers one interop request (by request_id or report_id) fails that request only.</summary>
    private bool FailInterop(Error error) => FailConsent(error) || FailCapabilities(error) || FailAbuseReport(error) || FailHealth(error) || FailTrace(error) || FailEvidence(error);
}
