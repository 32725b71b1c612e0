namespace Relayd.Hosting;

/// <summary>
/// Runs socket continuations on the runtime's epoll threads (one per core) instead of handing each one to a
/// thread-pool worker. A message crosses several sockets (sender read, Ack write, Deliver write, DeliveryAck read),
/// and every hand-off is a wake-up that costs more than the work it carries on a small box (bench/README.md, "Client
/// CPU, and latency at low rates"). The runtime reads the switch once, when the first socket registers, so this must
/// run before any socket is made. An admin who set the variable (to 0 to keep the thread-pool hand-off) is obeyed.
/// </summary>
internal static class SocketCompletions
{
    public const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public static void PreferInline()
    {
        if (Environment.GetEnvironmentVariable(Variable) is null)
        {
            Environment.SetEnvironmentVariable(Variable, "1");
        }
    }
}
