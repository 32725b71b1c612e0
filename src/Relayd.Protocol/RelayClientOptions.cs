using System.Security.Cryptography.X509Certificates;
using Relayd.Protocol.V1;

namespace Relayd.Protocol;

/// <summary>How a partner server connects to a relay.</summary>
public sealed record RelayClientOptions
{
    /// <summary>Relay host name or address. Also the TLS server name unless <see cref="TargetHost"/> is set.</summary>
    public required string Host { get; init; }

    /// <summary>Relay port (default: 7443).</summary>
    public int Port { get; init; } = 7443;

    /// <summary>The partner's client certificate, with its private key, issued by the relay's partner CA.</summary>
    public required X509Certificate2 ClientCertificate { get; init; }

    /// <summary>
    /// Roots that may issue the relay's server certificate. Null uses the system trust store (default: null).
    /// </summary>
    public X509Certificate2Collection? RelayRoots { get; init; }

    /// <summary>TLS server name to expect (default: <see cref="Host"/>).</summary>
    public string? TargetHost { get; init; }

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

    /// <summary>Free-form agent string sent in Hello, for the relay's logs (default: "Relayd.Protocol/1").</summary>
    public string Agent { get; init; } = "Relayd.Protocol/1";
}
