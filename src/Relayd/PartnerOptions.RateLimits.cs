namespace Relayd;

/// <summary>A partner's own rate limits: each overrides the <c>[interop]</c> key of the same name (0 = unlimited).</summary>
public sealed partial class PartnerOptions
{
    private long? _partnerEnvelopesPerSecond;
    private long? _partnerBytesPerSecond;
    private long? _userEnvelopesPerSecond;
    private long? _userEnvelopeBurst;
    private long? _newConversationsPerHour;
    private long? _keyBundleRequestsPerMinute;

    /// <summary>Overrides <see cref="InteropOptions.PartnerEnvelopesPerSecond"/>. Defaults to null (the [interop] value).</summary>
    public long? PartnerEnvelopesPerSecond
    {
        get => _partnerEnvelopesPerSecond;
        set => _partnerEnvelopesPerSecond = value is null ? null : InteropOptions.CheckRate(value.Value, nameof(PartnerEnvelopesPerSecond));
    }

    /// <summary>Overrides <see cref="InteropOptions.PartnerBytesPerSecond"/>. Defaults to null (the [interop] value).</summary>
    public long? PartnerBytesPerSecond
    {
        get => _partnerBytesPerSecond;
        set => _partnerBytesPerSecond = value is null ? null : InteropOptions.CheckRate(value.Value, nameof(PartnerBytesPerSecond));
    }

    /// <summary>Overrides <see cref="InteropOptions.UserEnvelopesPerSecond"/> for this partner's users. Defaults to null (the [interop] value).</summary>
    public long? UserEnvelopesPerSecond
    {
        get => _userEnvelopesPerSecond;
        set => _userEnvelopesPerSecond = value is null ? null : InteropOptions.CheckRate(value.Value, nameof(UserEnvelopesPerSecond));
    }

    /// <summary>Overrides <see cref="InteropOptions.UserEnvelopeBurst"/> for this partner's users. Defaults to null (the [interop] value).</summary>
    public long? UserEnvelopeBurst
    {
        get => _userEnvelopeBurst;
        set => _userEnvelopeBurst = value is null ? null : InteropOptions.CheckBurst(value.Value, nameof(UserEnvelopeBurst));
    }

    /// <summary>Overrides <see cref="InteropOptions.NewConversationsPerHour"/> for this partner's users. Defaults to null (the [interop] value).</summary>
    public long? NewConversationsPerHour
    {
        get => _newConversationsPerHour;
        set => _newConversationsPerHour = value is null ? null : InteropOptions.CheckRate(value.Value, nameof(NewConversationsPerHour));
    }

    /// <summary>Overrides <see cref="InteropOptions.KeyBundleRequestsPerMinute"/> for this partner's users. Defaults to null (the [interop] value).</summary>
    public long? KeyBundleRequestsPerMinute
    {
        get => _keyBundleRequestsPerMinute;
        set => _keyBundleRequestsPerMinute = value is null ? null : InteropOptions.CheckRate(value.Value, nameof(KeyBundleRequestsPerMinute));
    }
}
