namespace Relayd.Tests.Infrastructure;

/// <summary>The real fdatasync, which a test can hold (it blocks until released, at most a minute).</summary>
internal sealed class HeldDisk : Relayd.Wal.IWalFileSync
{
    private readonly ManualResetEventSlim _open = new(initialState: true);

    public void Hold() => _open.Reset();

    public void Release() => _open.Set();

    public int FDataSync(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        _open.Wait(TimeSpan.FromSeconds(60));
        return Relayd.Wal.LibcFileSync.Instance.FDataSync(file);
    }
}
