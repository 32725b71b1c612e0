using System.Globalization;

namespace Relayd.LoadGen.Peers;

/// <summary>The subjects the NATS targets publish to: <c>load.&lt;recipient&gt;</c>, built once per run, not per message.</summary>
internal static class NatsSubjects
{
    /// <summary>Subject matching every recipient's subject.</summary>
    public const string All = "load.>";

    public static string[] ForUsers(int users) =>
        [.. Enumerable.Range(0, users).Select(user => "load." + user.ToString(CultureInfo.InvariantCulture))];
}
