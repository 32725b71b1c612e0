using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>Why a rule refused: the code and detail the partner is sent, and when to retry (0 = no hint).</summary>
internal readonly record struct AdmissionRefusal(ErrorCode Code, string Detail, uint RetryAfterMs = 0);
