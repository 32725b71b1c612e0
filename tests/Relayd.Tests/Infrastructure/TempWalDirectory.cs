namespace Relayd.Tests.Infrastructure;

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
