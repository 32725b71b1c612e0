using System.Diagnostics;

namespace Relayd.LoadGen;

/// <summary>
/// The load generator's own sockets complete inline on the runtime's event threads (one per core) instead of being
/// handed to pool workers: each hand-off is a wake-up, and on a 2-core box the client's wake-ups take CPU from the
/// relay it measures (bench/README.md, "Client CPU, and latency at low rates"). The runtime reads the variable once,
/// when the first socket registers. Children (the relay, the peers) do not inherit it unless the user set it.
/// </summary>
internal static class ClientSocketCompletions
{
    private const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
    private static bool s_setHere;

    /// <summary>Call first in Main, before any socket exists.</summary>
    public static void PreferInline()
    {
        if (Environment.GetEnvironmentVariable(Variable) is null)
        {
            Environment.SetEnvironmentVariable(Variable, "1");
            s_setHere = true;
        }
    }

    /// <summary>Keeps the setting out of a child's environment when this process made it, not the user.</summary>
    public static void KeepFromChild(ProcessStartInfo start)
    {
        if (s_setHere)
        {
            start.Environment.Remove(Variable);
        }
    }
}
