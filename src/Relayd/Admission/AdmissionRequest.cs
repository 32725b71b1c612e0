using System.Buffers;

namespace Relayd.Admission;

/// <summary>What is asking to be admitted. Rules word their refusals for it.</summary>
internal enum AdmissionSubject
{
    Envelope,
    MediaOpen,

    /// <summary>A KeyBundleRequest: the requester is the sender, the target the recipient.</summary>
    KeyBundleRequest,

    /// <summary>A Typing notice (ephemeral).</summary>
    Typing,
}

/// <summary>
/// One envelope or MediaOpen as the admission rules see it: built on the stack by the router from what it has already
/// read (fields sliced from the frame, the recipient looked up), so checking it allocates nothing. Fields a path does
/// not have stay at their defaults and the rules of that path do not read them.
/// </summary>
internal readonly ref struct AdmissionRequest
{
    public required AdmissionSubject Subject { get; init; }

    /// <summary>The partner authenticated by the connection's certificate.</summary>
    public required IAdmissionPartner Sender { get; init; }

    /// <summary>Envelope: the sender_partner field as UTF-8, sliced from the frame.</summary>
    public ReadOnlySequence<byte> SenderPartnerUtf8 { get; init; }

    /// <summary>MediaOpen: the sender_partner field.</summary>
    public string? SenderPartnerText { get; init; }

    /// <summary>The approved partner recipient_partner names; null when it names none.</summary>
    public IAdmissionPartner? Recipient { get; init; }

    /// <summary>MediaOpen: the recipient_partner field, for the refusal's detail.</summary>
    public string? RecipientPartnerText { get; init; }

    public int ContentKind { get; init; }

    /// <summary>The sender's user id (sender_user, requester_user), sliced from the frame: opaque bytes.</summary>
    public ReadOnlySequence<byte> SenderUser { get; init; }

    /// <summary>The recipient's user id (recipient_user, target_user), sliced from the frame: opaque bytes.</summary>
    public ReadOnlySequence<byte> RecipientUser { get; init; }

    /// <summary>Bytes the request carries for the byte rate limits: an envelope's frame, a MediaOpen's declared blob.</summary>
    public long Bytes { get; init; }

    /// <summary>Largest frame body the recipient would be sent for this (a Deliver frame, a forwarded MediaOpen).</summary>
    public int RecipientFrameBytes { get; init; }

    /// <summary>The sender's expires_at_ms; 0 = none.</summary>
    public long ExpiresAtMs { get; init; }

    public long NowMs { get; init; }

    /// <summary>Envelope: whether the relay's disk is below its reserve (a flag read, never a disk probe).</summary>
    public bool StorageFull { get; init; }

    /// <summary>
    /// The same envelope again after the log was too busy to take it: its rate-limit tokens were taken the first time,
    /// and the rate-limit rule lets it through without taking them twice.
    /// </summary>
    public bool RateLimitTaken { get; init; }

    /// <summary>Envelope: length of message_id.</summary>
    public int MessageIdLength { get; init; }

    /// <summary>Envelope: whether recipient_user is empty.</summary>
    public bool RecipientUserEmpty { get; init; }

    /// <summary>MediaOpen: length of sha256.</summary>
    public int Sha256Length { get; init; }

    /// <summary>MediaOpen: total_size.</summary>
    public ulong DeclaredMediaBytes { get; init; }

    /// <summary>MediaOpen: the largest blob the sender may send (its max_media_bytes, or the relay's).</summary>
    public long SenderMediaLimitBytes { get; init; }

    /// <summary>The recipient, for rules placed after <see cref="RecipientRule"/> (which refuses a null one).</summary>
    public IAdmissionPartner KnownRecipient =>
        Recipient ?? throw new InvalidOperationException("an admission rule that reads the recipient runs before RecipientRule");
}
