using System.Buffers.Binary;
using System.Text;

namespace Relayd.Tests.Diagnostics.Journal;

/// <summary>
/// A datagram of journald's native protocol read back field by field, the way journald reads it: <c>KEY=value\n</c>,
/// or <c>KEY\n</c> + 64-bit little-endian length + value + <c>\n</c>. Strict: anything else fails the test.
/// </summary>
internal sealed class JournalDatagram
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private JournalDatagram(List<JournalDatagramField> fields, int length)
    {
        Fields = fields;
        Length = length;
    }

    public IReadOnlyList<JournalDatagramField> Fields { get; }

    /// <summary>The datagram's size in bytes.</summary>
    public int Length { get; }

    /// <summary>The value of a field that must be there exactly once.</summary>
    public string this[string key] => Field(key).Value;

    public JournalDatagramField Field(string key) => Assert.Single(Fields, f => f.Key == key);

    public bool Has(string key) => Fields.Any(f => f.Key == key);

    public static JournalDatagram Parse(ReadOnlySpan<byte> datagram)
    {
        var fields = new List<JournalDatagramField>();
        int length = datagram.Length;
        while (!datagram.IsEmpty)
        {
            int end = datagram.IndexOfAny((byte)'=', (byte)'\n');
            Assert.True(end > 0, $"a field without a key or end at byte {length - datagram.Length}");
            string key = Encoding.ASCII.GetString(datagram[..end]);
            Assert.Matches("^[A-Z0-9][A-Z0-9_]*$", key);
            if (datagram[end] == (byte)'=')
            {
                datagram = datagram[(end + 1)..];
                int newline = datagram.IndexOf((byte)'\n');
                Assert.True(newline >= 0, $"{key}: no newline after the value");
                fields.Add(new JournalDatagramField(key, StrictUtf8.GetString(datagram[..newline]), Binary: false));
                datagram = datagram[(newline + 1)..];
            }
            else
            {
                datagram = datagram[(end + 1)..];
                Assert.True(datagram.Length >= sizeof(ulong), $"{key}: binary form without its length");
                ulong size = BinaryPrimitives.ReadUInt64LittleEndian(datagram);
                datagram = datagram[sizeof(ulong)..];
                Assert.True(size < (ulong)datagram.Length, $"{key}: length {size} beyond the datagram's {datagram.Length} bytes left");
                fields.Add(new JournalDatagramField(key, StrictUtf8.GetString(datagram[..(int)size]), Binary: true));
                Assert.Equal((byte)'\n', datagram[(int)size]);
                datagram = datagram[((int)size + 1)..];
            }
        }

        return new JournalDatagram(fields, length);
    }
}

/// <summary>One field of a <see cref="JournalDatagram"/>; <paramref name="Binary"/> when it came in the length-prefixed form.</summary>
internal sealed record JournalDatagramField(string Key, string Value, bool Binary);
