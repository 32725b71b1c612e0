namespace Relayd.LoadGen;

/// <summary>
/// A messaging system the load generator drives: relayd, or a peer users would pick instead (NATS, Redis).
/// The driver owns timing and statistics; a target only moves payloads from senders to receivers.
/// </summary>
public interface ILoadTarget : IAsyncDisposable
{
    /// <summary>Short name for tables and files, e.g. "relayd", "nats-jetstream", "redis-streams-always".</summary>
    string Name { get; }

    /// <summary>What an acknowledgement means here, printed with every result, e.g. "acked after fsync".</summary>
    string Durability { get; }

    /// <summary>Process id of the server, for RSS and CPU sampling; null when the target cannot tell.</summary>
    int? ServerPid { get; }

    /// <summary>
    /// Starts (or connects to) the server, opens <see cref="Workload.Connections"/> sending connections and the
    /// receiving side, and begins calling <paramref name="onDelivered"/> with each delivered payload (exactly the
    /// bytes given to <see cref="SendAsync"/>), from any thread.
    /// </summary>
    Task StartAsync(Workload workload, Action<ReadOnlySpan<byte>> onDelivered, CancellationToken cancellationToken);

    /// <summary>
    /// Sends one message on sending connection <paramref name="connection"/> to receiver <paramref name="recipient"/>
    /// (0 ≤ recipient &lt; <see cref="Workload.Users"/>); completes when the system acknowledged it.
    /// Throws <see cref="LoadRefusedException"/> when the system refused it.
    /// </summary>
    Task SendAsync(int connection, int recipient, ReadOnlyMemory<byte> payload);
}

/// <summary>A refusal by the system under test, with its error code as that system names it.</summary>
public sealed class LoadRefusedException : Exception
{
    public LoadRefusedException(string code, string message) : base(message) => Code = code;

    public LoadRefusedException() : this("UNKNOWN", "refused") { }

    public LoadRefusedException(string message) : this("UNKNOWN", message) { }

    public LoadRefusedException(string message, Exception inner) : base(message, inner) => Code = "UNKNOWN";

    public string Code { get; }
}

/// <summary>What to run: the same for every system in one run.</summary>
/// <param name="MessageBytes">Payload (ciphertext) bytes per message.</param>
/// <param name="Count">Messages to send; 0 = run for <paramref name="Duration"/>.</param>
/// <param name="Duration">How long to send when <paramref name="Count"/> is 0.</param>
/// <param name="Window">Closed loop: unacknowledged messages allowed per connection.</param>
/// <param name="Rate">Open loop: messages per second over all connections; 0 = closed loop.</param>
/// <param name="Connections">Sending connections.</param>
/// <param name="Users">Recipient users (conversations / streams / subjects).</param>
/// <param name="Warmup">Sending time before measurement starts.</param>
public sealed record Workload(int MessageBytes, long Count, TimeSpan Duration, int Window, int Rate, int Connections, int Users, TimeSpan Warmup)
{
    public bool OpenLoop => Rate > 0;

    /// <summary>Open loop: the pacer wakes at most this often and sends what is due (late by up to this, never early).</summary>
    public TimeSpan PaceQuantum { get; init; } = TimeSpan.FromMilliseconds(1);
}
