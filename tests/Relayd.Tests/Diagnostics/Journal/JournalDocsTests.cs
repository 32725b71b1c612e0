using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Relayd.Diagnostics;
using Relayd.Diagnostics.Journal;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Diagnostics.Journal;

/// <summary>
/// docs/operations.md ("The journal") lists the MESSAGE_ID and fields of relayd's main events for admins to paste
/// into <c>journalctl</c>; these tests keep that table equal to what the code sends. On a mismatch the failure
/// message prints the rows as the code has them.
/// </summary>
public sealed partial class JournalDocsTests
{
    // The events an admin filters for first: lifecycle, every refusal, sessions, the storage failures, and the interop
    // and shared-support stores' opening and failures.
    private static readonly string[] MainEvents =
    [
        "Listening", "ShuttingDown", "Stopped", "AcceptFailed", "ConfigWarning",
        "TlsRefused", "HandshakeTimedOut", "PartnerRefused", "RefusalsSummarized", "UntrackedRefusalsSummarized",
        "SessionOpened", "SessionClosed", "ProtocolViolation", "IdleClosed", "WriteStalled", "PartialFrameRefused", "HelloTimedOut",
        "EnvelopeRefused", "ReceiptsDropped", "EnvelopeRefusalsSummarized",
        "WalFailed", "MediaRefused", "MediaDigestMismatch",
        "Recovered", "RecipientGone", "StorageFull", "StorageAvailable", "LogFailed", "Expired",
        "ReloadApplied", "ReloadRefused", "PartnerRetired", "WatchdogWithheld",
        "ConsentOpened", "ConsentUpdateRefused", "ConsentSnapshotFailed", "ConsentLogFailed", "LiveFrameRefused", "SenderTightened",
        "AbuseReportAccepted", "AbuseReportRefused", "ReadReceiptDropped", "InteropLogFailed", "InteropRecovered",
        "EvidenceOpened", "EvidenceWriteFailed", "EvidenceTreesDeleted", "EvidenceStatementsDropped",
        "TraceOpened", "TraceWriteFailed", "TraceQueryFailed", "TraceUnavailable",
    ];

    private static readonly string OperationsPath = Path.Combine(ExternalProcess.RepositoryRoot, "docs", "operations.md");

    [Fact]
    public void The_table_of_event_ids_is_what_the_code_sends()
    {
        Dictionary<string, string> documented = DocumentedRows().ToDictionary(r => r.Name, r => r.Row, StringComparer.Ordinal);
        Dictionary<string, string> actual = Events().ToDictionary(e => e.Name, Row, StringComparer.Ordinal);

        string[] wrong = [.. documented.Where(d => !actual.TryGetValue(d.Key, out string? row) || row != d.Value).Select(d => d.Key)];
        string[] missing = [.. MainEvents.Where(e => !documented.ContainsKey(e))];

        Assert.True(wrong.Length == 0 && missing.Length == 0,
            $"docs/operations.md's event table: wrong rows {string.Join(", ", wrong)}; missing {string.Join(", ", missing)}. As the code has them:\n"
            + string.Join("\n", MainEvents.Select(e => actual[e])));
    }

    [Fact]
    public void The_journalctl_example_uses_EnvelopeRefused_s_id()
    {
        string text = File.ReadAllText(OperationsPath);

        Assert.Contains($"journalctl -u relayd MESSAGE_ID={JournalMessageIds.Of(EventIds.EnvelopeRefused)}", text, StringComparison.Ordinal);
    }

    /// <summary>The table row the code implies: name, id, MESSAGE_ID, level, and the RELAYD_ fields its placeholders fill.</summary>
    private static string Row(LoggedEvent e)
    {
        JournalField[] found = [.. PlaceholderRegex().Matches(e.Template).Select(m => JournalFields.Of(m.Groups[1].Value)).Distinct().Order()];
        bool recipientOnly = found.Contains(JournalField.RecipientPartner) && !found.Contains(JournalField.Partner);
        string[] fields =
        [
            .. found.Select(f => f switch
            {
                JournalField.Partner => "PARTNER",
                JournalField.RecipientPartner when recipientOnly => "PARTNER (the recipient)",
                JournalField.RecipientPartner => "RECIPIENT_PARTNER",
                JournalField.Session => "SESSION",
                JournalField.MessageId => "MESSAGE_ID",
                JournalField.ErrorCode => "ERROR_CODE",
                JournalField.Remote => "REMOTE",
                _ => null,
            }).OfType<string>(),
        ];
        return $"| {e.Name} | {e.Id} | `{JournalMessageIds.Of(e.Id)}` | {e.Level} | {string.Join(", ", fields)} |";
    }

    private static IEnumerable<(string Name, string Row)> DocumentedRows()
    {
        string text = File.ReadAllText(OperationsPath);
        int start = text.IndexOf("\n## The journal", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/operations.md has no '## The journal' section");
        int end = text.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        string section = end < 0 ? text[start..] : text[start..end];
        foreach (Match row in TableRowRegex().Matches(section))
        {
            yield return (row.Groups[1].Value, row.Value.TrimEnd());
        }
    }

    private static IEnumerable<LoggedEvent> Events() =>
        from type in typeof(EventIds).Assembly.GetTypes()
        from method in type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly)
        let attribute = method.GetCustomAttribute<LoggerMessageAttribute>()
        where attribute is not null
        select new LoggedEvent(attribute.EventName ?? method.Name, attribute.EventId, attribute.Level, attribute.Message);

    [GeneratedRegex(@"\{([A-Za-z]+)(?::[^}]*)?\}")]
    private static partial Regex PlaceholderRegex();

    // A row of the event table: | Name | 400 | `hex` | ...
    [GeneratedRegex(@"^\| ([A-Za-z]+) \| \d+ \| `[0-9a-f]{32}` \|.*$", RegexOptions.Multiline)]
    private static partial Regex TableRowRegex();

    private sealed record LoggedEvent(string Name, int Id, LogLevel Level, string Template);
}
