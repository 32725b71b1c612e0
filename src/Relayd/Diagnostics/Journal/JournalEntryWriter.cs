using System.Buffers.Binary;
using System.Text.Unicode;

namespace Relayd.Diagnostics.Journal;

/// <summary>
/// Writes one entry of journald's native protocol into a fixed buffer (one datagram): a field per line as
/// <c>KEY=value\n</c>, or, for a value with a newline in it, <c>KEY\n</c> + the value's length as 64-bit little
/// endian + the value + <c>\n</c> (systemd's "Native Journal Protocol" document). Values longer than the room left are
/// cut at a character boundary and marked, never split into a second datagram.
/// </summary>
internal ref struct JournalEntryWriter
{
    /// <summary>The most a field other than MESSAGE carries (partner ids, codes and addresses are far shorter).</summary>
    public const int MaxFieldBytes = 1024;

    private const int BinaryOverhead = 1 + sizeof(ulong) + 1; // "\n" + length + "\n" after the key

    private static ReadOnlySpan<byte> TruncatedMark => " [truncated]"u8;

    private readonly Span<byte> _buffer;
    private int _length;

    public JournalEntryWriter(Span<byte> buffer) => _buffer = buffer;

    /// <summary>The bytes written so far: the datagram.</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer[.._length];

    /// <summary>Adds a field with an ASCII value that fits (numbers, ids): always the <c>KEY=value</c> form.</summary>
    public void AddAscii(scoped ReadOnlySpan<byte> key, scoped ReadOnlySpan<byte> value)
    {
        if (key.Length + value.Length + 2 > _buffer.Length - _length)
        {
            return; // only a buffer far below the options' minimum gets here
        }

        Append(key);
        _buffer[_length++] = (byte)'=';
        Append(value);
        _buffer[_length++] = (byte)'\n';
    }

    /// <summary>Adds a field with an integer value.</summary>
    public void Add(scoped ReadOnlySpan<byte> key, long value)
    {
        Span<byte> digits = stackalloc byte[20];
        _ = value.TryFormat(digits, out int written, provider: System.Globalization.CultureInfo.InvariantCulture);
        AddAscii(key, digits[..written]);
    }

    /// <summary>Adds a short text field (at most <see cref="MaxFieldBytes"/> of it).</summary>
    public void Add(scoped ReadOnlySpan<byte> key, string value) => Add(key, value, MaxFieldBytes);

    /// <summary>Adds the MESSAGE field last, with all the room the datagram has left.</summary>
    public void AddMessage(string message) => Add("MESSAGE"u8, message, int.MaxValue);

    private void Add(scoped ReadOnlySpan<byte> key, string value, int maxValueBytes)
    {
        bool binary = value.Contains('\n', StringComparison.Ordinal);
        int overhead = key.Length + (binary ? BinaryOverhead : 2);
        int room = Math.Min(maxValueBytes, _buffer.Length - _length - overhead);
        if (room < TruncatedMark.Length)
        {
            return;
        }

        Append(key);
        int lengthAt = 0;
        if (binary)
        {
            _buffer[_length++] = (byte)'\n';
            lengthAt = _length;
            _length += sizeof(ulong);
        }
        else
        {
            _buffer[_length++] = (byte)'=';
        }

        int valueBytes = WriteUtf8(value, _buffer.Slice(_length, room));
        _length += valueBytes;
        if (binary)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(_buffer.Slice(lengthAt, sizeof(ulong)), (ulong)valueBytes);
        }

        _buffer[_length++] = (byte)'\n';
    }

    /// <summary>Encodes <paramref name="value"/> into <paramref name="destination"/>; when it does not fit, as much as fits with room for the mark, then the mark.</summary>
    private static int WriteUtf8(string value, Span<byte> destination)
    {
        if (Utf8.FromUtf16(value, destination, out _, out int written) == System.Buffers.OperationStatus.Done)
        {
            return written;
        }

        // Too long: FromUtf16 stops before a whole character that does not fit, so the cut never splits one.
        _ = Utf8.FromUtf16(value, destination[..^TruncatedMark.Length], out _, out written, replaceInvalidSequences: true, isFinalBlock: false);
        TruncatedMark.CopyTo(destination[written..]);
        return written + TruncatedMark.Length;
    }

    private void Append(scoped ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(_buffer[_length..]);
        _length += bytes.Length;
    }
}
