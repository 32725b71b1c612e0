namespace Relayd.LoadGen.Peers;

/// <summary>
/// The dev PKI every peer runs with, so peers get the same mutual TLS as relayd: the server presents
/// <see cref="ServerCertPath"/> and requires a client certificate issued by <see cref="CaCertPath"/>.
/// </summary>
/// <param name="CaCertPath">PEM certificate of the CA that issued both the server and the client certificate.</param>
/// <param name="ServerCertPath">PEM server certificate (SAN localhost and 127.0.0.1).</param>
/// <param name="ServerKeyPath">PEM private key of the server certificate.</param>
/// <param name="ClientCertPath">PEM client certificate (clientAuth, ECDSA P-256).</param>
/// <param name="ClientKeyPath">PEM private key of the client certificate.</param>
public sealed record PeerPki(string CaCertPath, string ServerCertPath, string ServerKeyPath, string ClientCertPath, string ClientKeyPath);
