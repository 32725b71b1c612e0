using Relayd.Protocol.V1;

namespace Relayd.Admission;

/// <summary>
/// Nothing new is stored while the disk is below its reserve. After dedup: a resend of something already stored still
/// gets its Ack while the disk is full. Reads the store's flag; the disk itself is probed outside the route's locks.
/// </summary>
internal sealed class StorageRule(TimeSpan retryAfter) : IAdmissionRule
{
    // What the session sends with STORAGE_FULL (limits.retry_after_ms).
    private readonly uint _retryAfterMs = (uint)retryAfter.TotalMilliseconds;

    public AdmissionStage Stage => AdmissionStage.AfterDedup;

    public bool Check(in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        if (!request.StorageFull)
        {
            refusal = default;
            return true;
        }

        refusal = new AdmissionRefusal(ErrorCode.StorageFull, "the relay's disk is below its reserve; retry later", _retryAfterMs);
        return false;
    }
}
