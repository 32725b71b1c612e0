namespace Relayd.LoadGen.Peers;

/// <summary>How a server shows it accepted our TLS session.</summary>
/// <param name="PlaintextGreeting">The server first sends one line in clear before TLS starts (NATS sends INFO).</param>
/// <param name="Ping">What to send once TLS is up.</param>
/// <param name="Pong">How the server's answer starts when all is well.</param>
internal sealed record TlsProbe(bool PlaintextGreeting, string Ping, string Pong);
