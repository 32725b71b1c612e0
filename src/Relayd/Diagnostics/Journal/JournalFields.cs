using System.Collections.Concurrent;

namespace Relayd.Diagnostics.Journal;

/// <summary>
/// Which placeholders of relayd's <c>[LoggerMessage]</c> templates become which <c>RELAYD_*</c> journal field
/// (placeholder names are matched ignoring case). A new placeholder spelling for one of these goes here.
/// </summary>
internal static class JournalFields
{
    public static ReadOnlySpan<byte> Partner => "RELAYD_PARTNER"u8;

    public static ReadOnlySpan<byte> RecipientPartner => "RELAYD_RECIPIENT_PARTNER"u8;

    public static ReadOnlySpan<byte> Session => "RELAYD_SESSION"u8;

    public static ReadOnlySpan<byte> MessageId => "RELAYD_MESSAGE_ID"u8;

    public static ReadOnlySpan<byte> ErrorCode => "RELAYD_ERROR_CODE"u8;

    public static ReadOnlySpan<byte> Remote => "RELAYD_REMOTE"u8;

    // Placeholder names are the generated code's string literals: a few dozen, classified once each.
    private static readonly ConcurrentDictionary<string, JournalField> Known = new(StringComparer.Ordinal);

    /// <summary>The field a placeholder maps to; <see cref="JournalField.None"/> for the others (they stay in MESSAGE only).</summary>
    public static JournalField Of(string placeholder) => Known.GetOrAdd(placeholder, Classify);

    private static JournalField Classify(string placeholder) => placeholder.ToUpperInvariant() switch
    {
        // Media events name the sending partner {SenderId} and the receiving one {RecipientId}: the sender is the
        // partner the event is about, unless it names only a recipient (JournalLogger falls back to it).
        "PARTNER" or "PARTNERID" or "SENDER" or "SENDERID" => JournalField.Partner,
        "RECIPIENT" or "RECIPIENTID" => JournalField.RecipientPartner,
        "SESSION" or "SESSIONID" or "CONNECTIONID" => JournalField.Session,
        "MESSAGEID" => JournalField.MessageId,
        "CODE" or "ERRORCODE" => JournalField.ErrorCode,
        "REMOTE" or "ADDRESS" or "REMOTEADDRESS" => JournalField.Remote,
        _ => JournalField.None,
    };
}

/// <summary>The <c>RELAYD_*</c> fields a log entry's structured state can fill.</summary>
internal enum JournalField
{
    None,
    Partner,
    RecipientPartner,
    Session,
    MessageId,
    ErrorCode,
    Remote,
}
