using Relayd.Protocol;
using Relayd.Protocol.V1;

namespace Relayd.Transport;

/// <summary>
/// The interop frames a partner sends besides envelopes and media (docs/protocol.md, "Interop"). Each capability
/// has its own file: Consent, KeyBundles, Capabilities, Typing, ReadReceipts, Abuse. Until one is built its frames
/// are refused as UNEXPECTED_FRAME, naming it.
/// </summary>
internal sealed partial class PartnerSession
{
    private static RelayException NotYetCarried(string frame) =>
        new(ErrorCode.UnexpectedFrame, $"this relay does not carry {frame} frames yet");
}
