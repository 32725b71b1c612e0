namespace Relayd.LoadGen.Peers;

/// <summary>Disposal of a target's connections and server in order, skipping slots never filled.</summary>
internal static class AsyncDisposables
{
    /// <summary>Disposes each non-null item in order (a slot is null when StartAsync failed before filling it).</summary>
    public static async ValueTask DisposeAllAsync(IEnumerable<IAsyncDisposable?> items)
    {
        foreach (IAsyncDisposable? item in items)
        {
            if (item is not null)
            {
                await item.DisposeAsync();
            }
        }
    }
}
