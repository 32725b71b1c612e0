using System.Reflection;
using Relayd.Diagnostics;
using Relayd.Diagnostics.Journal;

namespace Relayd.Tests.Diagnostics.Journal;

/// <summary>
/// <c>MESSAGE_ID</c> is what <c>journalctl MESSAGE_ID=...</c> filters by: one fixed 128-bit id per event id, the same
/// on every run and machine, in journald's spelling, and reproducible from the documented derivation.
/// </summary>
public sealed class JournalMessageIdTests
{
    private static readonly int[] AllEventIds =
    [
        .. from field in typeof(EventIds).GetFields(BindingFlags.Public | BindingFlags.Static)
           where field.IsLiteral && field.FieldType == typeof(int)
           select (int)field.GetRawConstantValue()!,
    ];

    [Fact]
    public void Each_event_id_has_its_own_message_id_in_journald_s_spelling()
    {
        Assert.True(AllEventIds.Length >= 50, $"only {AllEventIds.Length} event ids found");
        string[] ids = [.. AllEventIds.Select(JournalMessageIds.Of)];

        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{32}$", id));
        Assert.Equal(ids.Length, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void The_id_is_the_documented_name_based_uuid_so_anyone_can_recompute_it()
    {
        // Computed with Python's uuid module, the command docs/operations.md gives:
        // python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('e02bbb3c-c2b9-413d-b900-1729b0fa990b'), '400').hex)"
        Assert.Equal("3fcf2aa5da8c5c62af0df36fdf9bd4f2", JournalMessageIds.Of(EventIds.EnvelopeRefused));
    }

    [Fact]
    public void The_bytes_the_journal_field_carries_are_the_id()
    {
        string first = System.Text.Encoding.ASCII.GetString(JournalMessageIds.Utf8Of(EventIds.PartnerRefused));
        string cached = System.Text.Encoding.ASCII.GetString(JournalMessageIds.Utf8Of(EventIds.PartnerRefused));

        Assert.Equal(JournalMessageIds.Of(EventIds.PartnerRefused), first);
        Assert.Equal(first, cached);
    }
}
