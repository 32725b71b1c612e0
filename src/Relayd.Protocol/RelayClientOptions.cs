using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>
/// How a partner server connects to a relay. Start from <see cref="Default"/> and set at least <see cref="Host"/> and
/// <see cref="RelayClientTlsOptions.ClientCertificate"/>:
/// <c>RelayClientOptions.Default with { Host = "relay.example", Tls = new() { ClientCertificate = cert } }</c>.
/// </summary>
public sealed record RelayClientOptions
{
    /// <summary>Every option at its default; <see cref="Host"/> and the client certificate still have to be set.</summary>
    public static RelayClientOptions Default { get; } = new();

    /// <summary>
    /// Relay host name or address. Also the TLS server name unless <see cref="RelayClientTlsOptions.TargetHost"/> is
    /// set (default: none; it must be set).
    /// </summary>
    public string Host { get; init; } = "";

    /// <summary>Relay port (default: 7443).</summary>
    public int Port { get; init; } = 7443;

    /// <summary>Client certificate, relay roots and server name (default: <see cref="RelayClientTlsOptions.Default"/>).</summary>
    public RelayClientTlsOptions Tls { get; init; } = RelayClientTlsOptions.Default;

    /// <summary>
    /// Content kinds this partner's users can receive, sent in Hello; empty = all (default: empty). The relay refuses
    /// envelopes and media of other kinds to their senders (CONTENT_KIND_UNSUPPORTED) while this partner's connections
    /// declare so; give every connection of the partner the same list.
    /// </summary>
    public IReadOnlyList<ContentKind> AcceptedKinds { get; init; } = [];

    /// <summary>
    /// Largest frame accepted from the relay, in bytes, sent in Hello: the relay refuses to senders the envelopes whose
    /// Deliver frame would be larger (FRAME_TOO_LARGE) instead of sending them. At least 128 KiB, or the relay refuses
    /// the connection (default: 2 MiB, room for a 1 MiB envelope and its Deliver wrapping).
    /// </summary>
    public int MaxFrameBytes { get; init; } = 2 * 1024 * 1024;

    /// <summary>Time allowed for TCP connect, TLS handshake and Welcome (default: 10 s).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Deliveries buffered before the client stops reading the socket (default: 8192).</summary>
    public int DeliveryBufferCapacity { get; init; } = 8192;

    /// <summary>
    /// Whether receipts are surfaced through <see cref="RelayClient.ReadReceiptsAsync"/> (default: true). When true the
    /// application must read them: unread receipts eventually stop the connection's reader.
    /// </summary>
    public bool ReceiveReceipts { get; init; } = true;

    /// <summary>Receipt frames buffered before the client stops reading the socket (default: 65536).</summary>
    public int ReceiptBufferCapacity { get; init; } = 65536;

    /// <summary>Called for errors from the relay that concern no single envelope and do not close the connection.</summary>
    public Action<RelayException>? OnRelayError { get; init; }

    /// <summary>
    /// Whether this partner's users can be shown read receipts (sent in Hello; default: false). The relay tells senders
    /// through Capabilities; Receipt(READ) for this partner's own messages arrives either way.
    /// </summary>
    public bool AcceptsReadReceipts { get; init; }

    /// <summary>Whether this partner shows typing notices from other partners' users (sent in Hello; default: false).</summary>
    public bool AcceptsTyping { get; init; }

    /// <summary>Free-form agent string sent in Hello, for the relay's logs (default: "Relayd.Protocol/1").</summary>
    public string Agent { get; init; } = "Relayd.Protocol/1";

    /// <summary>
    /// Checks every option before anything touches the network; <see cref="RelayClient.ConnectAsync"/> calls it.
    /// Limits the relay enforces itself (such as its minimum for <see cref="MaxFrameBytes"/>) are left to the relay,
    /// which answers them with an error code.
    /// </summary>
    /// <exception cref="ArgumentException">An option is missing or out of range; the parameter name is the option's
    /// (e.g. <c>Tls.ClientCertificate</c>) and the message says what it must be.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host))
        {
            throw Invalid(nameof(Host), "must name the relay (a host name or address)");
        }

        if (Port is < 1 or > 65535)
        {
            throw OutOfRange(nameof(Port), Port, "must be a TCP port, 1 to 65535");
        }

        if (Tls is null)
        {
            throw Invalid(nameof(Tls), "must be set (start from RelayClientTlsOptions.Default)");
        }

        if (Tls.ClientCertificate is null)
        {
            throw Invalid("Tls.ClientCertificate", "must be the partner's client certificate, with its private key");
        }

        if (AcceptedKinds is null)
        {
            throw Invalid(nameof(AcceptedKinds), "must be a list (empty = all kinds)");
        }

        if (MaxFrameBytes < 1)
        {
            throw OutOfRange(nameof(MaxFrameBytes), MaxFrameBytes, "must be positive");
        }

        // The bounds CancellationTokenSource.CancelAfter accepts.
        if (ConnectTimeout != Timeout.InfiniteTimeSpan && (ConnectTimeout <= TimeSpan.Zero || ConnectTimeout.TotalMilliseconds > uint.MaxValue - 1))
        {
            throw OutOfRange(nameof(ConnectTimeout), ConnectTimeout, "must be positive and below 49 days, or Timeout.InfiniteTimeSpan");
        }

        if (DeliveryBufferCapacity < 1)
        {
            throw OutOfRange(nameof(DeliveryBufferCapacity), DeliveryBufferCapacity, "must be at least 1");
        }

        if (ReceiptBufferCapacity < 1)
        {
            throw OutOfRange(nameof(ReceiptBufferCapacity), ReceiptBufferCapacity, "must be at least 1");
        }

        if (Agent is null)
        {
            throw Invalid(nameof(Agent), "must be a string (it may be empty)");
        }
    }

    private static ArgumentException Invalid(string option, string rule) => new($"RelayClientOptions.{option} {rule}.", option);

    private static ArgumentOutOfRangeException OutOfRange(string option, object value, string rule) =>
        new(option, value, $"RelayClientOptions.{option} {rule}.");
}
