using System.Buffers;
using Microsoft.Extensions.Logging;
using Relayd.Wal;

namespace Relayd.Tests.Wal;

/// <summary>A temporary directory for one log, deleted afterwards.</summary>
internal sealed class TempWalDirectory : IDisposable
{
    public TempWalDirectory() => Path = Directory.CreateTempSubdirectory("relayd-wal-").FullName;

    public string Path { get; }

    public string Segment(ulong number) => System.IO.Path.Combine(Path, $"wal-{number:x16}.log");

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Opening logs, appending with the retry protocol, and deterministic payloads.</summary>
internal static class WalTestKit
{
    public const int SmallSegment = 64 * 1024;

    public static WalOptions Options(string directory, int segmentBytes = SmallSegment, IWalFileSync? sync = null, int writeBufferBytes = 1024 * 1024) => new()
    {
        Directory = directory,
        SegmentBytes = segmentBytes,
        WriteBufferBytes = writeBufferBytes,
        FileSync = sync ?? LibcFileSync.Instance,
    };

    public static WriteAheadLog Open(string directory, int segmentBytes = SmallSegment, IWalFileSync? sync = null, ILogger? logger = null) =>
        WriteAheadLog.Open(Options(directory, segmentBytes, sync), logger ?? new ListLogger());

    /// <summary>Appends (waiting for space when the buffer is full) and returns the record's position.</summary>
    public static async Task<WalPosition> AppendAsync(WriteAheadLog log, byte type, byte[] payload)
    {
        WalPosition position;
        while (!log.TryAppend(type, payload, out position))
        {
            await log.WaitForSpaceAsync(TestContext.Current.CancellationToken);
        }

        return position;
    }

    /// <summary>Appends every record, waits until the last one is durable, and returns the positions.</summary>
    public static async Task<List<WalPosition>> AppendAndCommitAsync(WriteAheadLog log, IEnumerable<(byte Type, byte[] Payload)> records)
    {
        var positions = new List<WalPosition>();
        WalPosition end = default;
        foreach ((byte type, byte[] payload) in records)
        {
            WalPosition position = await AppendAsync(log, type, payload);
            positions.Add(position);
            end = WriteAheadLog.EndOf(position, payload.Length);
        }

        await log.WaitForCommitAsync(end, TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        return positions;
    }

    /// <summary>A payload of bytes 1..255 (no zeros, so zeroing any suffix of it changes it), determined by the seed.</summary>
    public static byte[] Payload(int seed, int length)
    {
        var random = new Random(seed);
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)random.Next(1, 256);
        }

        return bytes;
    }

    /// <summary>Records of varying type and length (0 to <paramref name="maxLength"/> bytes).</summary>
    public static List<(byte Type, byte[] Payload)> Records(int count, int maxLength, int seed = 1)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(i => ((byte)random.Next(1, 256), Payload(seed * 100_000 + i, random.Next(0, maxLength + 1))))];
    }

    public static void AssertSameRecords(IReadOnlyList<(byte Type, byte[] Payload)> expected, IReadOnlyList<WalRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Type, actual[i].Type);
            Assert.True(expected[i].Payload.AsSpan().SequenceEqual(actual[i].Payload.Span), $"record {i} differs");
        }
    }
}

/// <summary>An ILogger that keeps every entry, to assert on what was logged.</summary>
internal sealed class ListLogger : ILogger
{
    private readonly List<(EventId Id, LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(EventId Id, LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((eventId, logLevel, formatter(state, exception)));
        }
    }
}
