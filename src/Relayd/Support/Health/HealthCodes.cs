using Relayd.Protocol.V1;

namespace Relayd.Support.Health;

/// <summary>Dense counter indexes for <see cref="ErrorCode"/> values (the enum's numbers are sparse), built once.</summary>
internal static class HealthCodes
{
    private static readonly ErrorCode[] Codes = Enum.GetValues<ErrorCode>();
    private static readonly int[] IndexByValue = BuildIndex();

    /// <summary>Counters needed: one per known code and one for a code this build does not know.</summary>
    public static int Count => Codes.Length + 1;

    private static int Other => Codes.Length;

    /// <summary>The counter of <paramref name="code"/>; unknown codes share the last one.</summary>
    public static int IndexOf(ErrorCode code) => (uint)code < (uint)IndexByValue.Length ? IndexByValue[(int)code] : Other;

    /// <summary>The code of counter <paramref name="index"/> (the shared one reads as UNSPECIFIED).</summary>
    public static ErrorCode CodeAt(int index) => index < Codes.Length ? Codes[index] : ErrorCode.Unspecified;

    private static int[] BuildIndex()
    {
        int largest = Codes.Max(c => (int)c);
        var index = new int[Math.Min(largest, 4096) + 1];
        Array.Fill(index, Codes.Length);
        for (int i = 0; i < Codes.Length; i++)
        {
            if ((int)Codes[i] >= 0 && (int)Codes[i] < index.Length)
            {
                index[(int)Codes[i]] = i;
            }
        }

        return index;
    }
}

/// <summary>
/// The disconnect reasons seen, interned to counter indexes: the data path passes short stable words ("idle",
/// "goaway", "eof"), so a few slots suffice; a reason beyond them counts as "other". Sessions end rarely: the lock
/// taken to add a new word is not on the envelope path.
/// </summary>
internal sealed class ReasonTable
{
    public const int Capacity = 16;
    public const string OtherReason = "other";

    private readonly string[] _reasons = new string[Capacity];
    private readonly Lock _lock = new();
    private int _count;

    /// <summary>Counters needed: <see cref="Capacity"/> and "other".</summary>
    public static int Count => Capacity + 1;

    public int IndexOf(string reason)
    {
        int count = Volatile.Read(ref _count);
        for (int i = 0; i < count; i++)
        {
            if (string.Equals(_reasons[i], reason, StringComparison.Ordinal))
            {
                return i;
            }
        }

        lock (_lock)
        {
            for (int i = count; i < _count; i++)
            {
                if (string.Equals(_reasons[i], reason, StringComparison.Ordinal))
                {
                    return i;
                }
            }

            if (_count == Capacity)
            {
                return Capacity;
            }

            _reasons[_count] = reason;
            Volatile.Write(ref _count, _count + 1);
            return _count - 1;
        }
    }

    public string ReasonAt(int index) => index < Volatile.Read(ref _count) ? _reasons[index] : OtherReason;
}
