namespace Relayd.LoadGen.Peers;

/// <summary>Runs a target's receiving side in the background.</summary>
internal static class ReceiveLoop
{
    /// <summary>
    /// Starts <paramref name="loop"/> on the thread pool until <paramref name="stopping"/> is cancelled. A failure is
    /// printed at once: the driver only sees deliveries stop, and would otherwise wait without a clue.
    /// </summary>
    public static Task Start(string target, Func<CancellationToken, Task> loop, CancellationToken stopping) =>
        Task.Run(
            async () =>
            {
                try
                {
                    await loop(stopping);
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                }
                catch (Exception e)
                {
                    await Console.Error.WriteLineAsync($"{target}: receiver stopped: {e}");
                }
            },
            CancellationToken.None);
}
