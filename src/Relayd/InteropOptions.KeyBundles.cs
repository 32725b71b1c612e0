namespace Relayd;

public sealed partial class InteropOptions
{
    private TimeSpan _keyBundleTimeout = TimeSpan.FromSeconds(5);
    private int _keyBundleMaxBytes = 64 * 1024;
    private int _keyBundlePendingPerPartner = 1024;

    /// <summary>
    /// How long the relay waits for the target partner to answer a KeyBundleRequest before it answers the requester
    /// KEY_BUNDLE_TIMEOUT itself (also when the target has no session). Checked by one sweep, so an answer may come up to
    /// a tenth of this late. 10 ms to 5 minutes. Defaults to 5 s: a user waits for it before the first message.
    /// </summary>
    public TimeSpan KeyBundleTimeout
    {
        get => _keyBundleTimeout;
        set => _keyBundleTimeout = value >= TimeSpan.FromMilliseconds(10) && value <= TimeSpan.FromMinutes(5)
            ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 10 ms to 5 minutes");
    }

    /// <summary>
    /// Largest key bundle the relay forwards, in bytes; a larger answer is replaced by KEY_BUNDLE_TOO_LARGE to the
    /// requester. 1 byte to 1 MiB. Defaults to 64 KiB (a Signal prekey bundle is under 1 KiB; a post-quantum one a few KiB).
    /// </summary>
    public int KeyBundleMaxBytes
    {
        get => _keyBundleMaxBytes;
        set => _keyBundleMaxBytes = value is >= 1 and <= 1024 * 1024
            ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1 to 1048576");
    }

    /// <summary>
    /// Key-bundle requests one requester partner may have waiting for an answer at once; one more is answered
    /// RATE_LIMITED. Bounds the relay's memory for requests whatever the target does. 1 to 1,000,000. Defaults to 1024.
    /// </summary>
    public int KeyBundlePendingPerPartner
    {
        get => _keyBundlePendingPerPartner;
        set => _keyBundlePendingPerPartner = value is >= 1 and <= 1_000_000
            ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "must be 1 to 1000000");
    }
}
