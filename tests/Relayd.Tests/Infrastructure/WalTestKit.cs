using System.Buffers;
using Microsoft.Extensions.Logging;
using Relayd.Wal;

namespace Relayd.Tests.Infrastructure;

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

    /// <summary>Opens as <see cref="Open"/>, keeping a copy of every record the open scan hands its observer, in order.</summary>
    public static WriteAheadLog OpenObserved(string directory, out List<WalRecord> seen)
    {
        var copier = new RecordCopier();
        seen = copier.Records;
        return WriteAheadLog.Open(Options(directory), new ListLogger(), copier);
    }

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

    /// <summary>Keeps a copy of each record the open scan reports (its payload is only lent).</summary>
    private sealed class RecordCopier : IWalRecordObserver
    {
        public List<WalRecord> Records { get; } = [];

        public void OnRecord(in WalRecord record) => Records.Add(record with { Payload = record.Payload.ToArray() });
    }
}
