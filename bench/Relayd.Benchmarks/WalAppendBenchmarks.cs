using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Relayd.Wal;

namespace Relayd.Benchmarks;

/// <summary>
/// Durable appends to the write-ahead log: a batch of records appended (never syncing), then one wait for the group
/// commit that covers them (pwrite + checked fdatasync on a real file). Each operation is one record.
/// </summary>
[MemoryDiagnoser]
public class WalAppendBenchmarks
{
    private const int Batch = 256;
    private string _directory = "";
    private WriteAheadLog _log = null!;
    private byte[] _payload = [];

    [Params(1024, 64 * 1024)]
    public int RecordBytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateTempSubdirectory("relayd-walbench-").FullName;
        _log = WriteAheadLog.Open(new WalOptions { Directory = _directory, WriteBufferBytes = 32 * 1024 * 1024 }, NullLogger.Instance);
        _payload = new byte[RecordBytes];
        Random.Shared.NextBytes(_payload);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public async Task AppendAndGroupCommit()
    {
        WalPosition last = default;
        for (int i = 0; i < Batch; i++)
        {
            while (!_log.TryAppend(1, _payload, out last))
            {
                await _log.WaitForSpaceAsync();
            }
        }

        await _log.WaitForCommitAsync(WriteAheadLog.EndOf(last, _payload.Length));
    }
}
