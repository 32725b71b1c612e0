namespace Relayd;

public sealed partial class InteropOptions
{
    private int _maxConsentChanges = 1000;

    /// <summary>
    /// Most changes one ConsentUpdate may carry, 1..10,000; more is refused with INVALID_REQUEST (split the batch).
    /// Bounds the consent log record (1,000 changes of the longest user ids is about 270 KiB) and the time one update
    /// holds the consent table's write lock. Defaults to 1000.
    /// </summary>
    public int MaxConsentChanges
    {
        get => _maxConsentChanges;
        set => _maxConsentChanges = value is >= 1 and <= 10_000
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxConsentChanges), value, "interop.max_consent_changes must be between 1 and 10000");
    }
}
