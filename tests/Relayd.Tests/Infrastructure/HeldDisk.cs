namespace Relayd.Tests.Infrastructure;

/// <summary>The real fdatasync, which a test can hold (it blocks until released, at most a minute) and count.</summary>
internal sealed class HeldDisk : Relayd.Wal.IWalFileSync
{
    private readonly ManualResetEventSlim _open = new(initialState: true);
    private long _syncs;

    /// <summary>Released once each time an fdatasync starts waiting on <see cref="Hold"/>.</summary>
    public SemaphoreSlim Waiting { get; } = new(0);

    /// <summary>fdatasync calls that returned.</summary>
    public long Syncs => Interlocked.Read(ref _syncs);

    public void Hold() => _open.Reset();

    public void Release() => _open.Set();

    public int FDataSync(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        if (!_open.IsSet)
        {
            Waiting.Release();
        }

        _open.Wait(TimeSpan.FromSeconds(60));
        Interlocked.Increment(ref _syncs);
        return Relayd.Wal.LibcFileSync.Instance.FDataSync(file);
    }
}
