namespace Relayd.LoadGen.Peers;

/// <summary>A private temporary directory for one server's configuration and data, deleted with everything in it.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory(string prefix) => Path = Directory.CreateTempSubdirectory(prefix).FullName;

    /// <summary>Full path of the directory.</summary>
    public string Path { get; }

    /// <summary>Full path of <paramref name="name"/> inside the directory.</summary>
    public string PathOf(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
