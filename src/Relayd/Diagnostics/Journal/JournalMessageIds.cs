using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Relayd.Diagnostics.Journal;

/// <summary>
/// The journal's <c>MESSAGE_ID</c> of each relayd event: a name-based UUID (RFC 9562 version 5) of the event id's
/// decimal digits in the fixed <see cref="Namespace"/>, written as journald spells ids (32 lowercase hex digits, no
/// dashes). The same on every run, version and machine, so <c>journalctl MESSAGE_ID=...</c> finds one kind of event;
/// reproduce one with <c>python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('e02bbb3c-c2b9-413d-b900-1729b0fa990b'), '400').hex)"</c>.
/// </summary>
internal static class JournalMessageIds
{
    /// <summary>relayd's namespace for message ids (a random UUID drawn once; never change it: admins filter by the ids).</summary>
    public static readonly Guid Namespace = new("e02bbb3c-c2b9-413d-b900-1729b0fa990b");

    private static readonly ConcurrentDictionary<int, byte[]> Cache = new();

    /// <summary>The id of <paramref name="eventId"/> as the 32 ASCII hex digits the journal field carries.</summary>
    public static ReadOnlySpan<byte> Utf8Of(int eventId) => Cache.GetOrAdd(eventId, static id => Encoding.ASCII.GetBytes(Of(id)));

    /// <summary>The id of <paramref name="eventId"/> as 32 lowercase hex digits.</summary>
    public static string Of(int eventId)
    {
        Span<byte> input = stackalloc byte[16 + 11];
        _ = Namespace.TryWriteBytes(input, bigEndian: true, out _);
        _ = eventId.TryFormat(input[16..], out int digits, provider: System.Globalization.CultureInfo.InvariantCulture);
        Span<byte> hash = stackalloc byte[20];
#pragma warning disable CA5350 // SHA-1 is what UUID version 5 is defined with; this names events, it protects nothing.
        _ = SHA1.HashData(input[..(16 + digits)], hash);
#pragma warning restore CA5350
        hash[6] = (byte)((hash[6] & 0x0F) | 0x50); // version 5
        hash[8] = (byte)((hash[8] & 0x3F) | 0x80); // RFC variant
        return Convert.ToHexStringLower(hash[..16]);
    }
}
