using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Relayd.LoadGen.Peers;

/// <summary>The client half of a peer's mutual TLS: our client certificate, and a server check that trusts only the dev CA.</summary>
internal sealed class PeerTls : IDisposable
{
    private static readonly Oid ServerAuth = new("1.3.6.1.5.5.7.3.1");

    private readonly X509Certificate2 _ca;
    private readonly string _clientCertificatePath;

    public PeerTls(PeerPki pki)
    {
        _clientCertificatePath = pki.ClientCertPath;
        // CreateFromPemFile would look for a private key in the CA file; this reads the certificate alone.
        _ca = X509Certificate2.CreateFromPem(File.ReadAllText(pki.CaCertPath));
        ClientCertificate = X509Certificate2.CreateFromPemFile(pki.ClientCertPath, pki.ClientKeyPath);
    }

    /// <summary>The client certificate with its private key.</summary>
    public X509Certificate2 ClientCertificate { get; }

    /// <summary>
    /// Accepts the server only if its chain ends at the dev CA and it is valid for TLS servers. Only a chain error may be
    /// overruled here (the dev CA is in no system store); a host name mismatch or a missing certificate may not.
    /// </summary>
    public bool ValidateServer(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is not X509Certificate2 leaf || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.Add(_ca);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        custom.ChainPolicy.ApplicationPolicy.Add(ServerAuth);
        if (chain is not null)
        {
            foreach (X509ChainElement element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return custom.Build(leaf);
    }

    /// <summary>
    /// Opens a TLS session to 127.0.0.1:<paramref name="port"/> with the client certificate and pings the server in it.
    /// Throws <see cref="AuthenticationException"/> when either side refused the other's certificate, which waiting
    /// will not fix, and other exceptions while the server is not up yet.
    /// </summary>
    public async Task ProbeAsync(int port, TlsProbe probe, CancellationToken cancellationToken)
    {
        using var tcp = new TcpClient(AddressFamily.InterNetwork);
        await tcp.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
        NetworkStream stream = tcp.GetStream();
        if (probe.PlaintextGreeting && await ReadLineAsync(stream, cancellationToken) is null)
        {
            throw new IOException("The server closed the connection before its greeting line ended.");
        }

        await using var tls = new SslStream(stream, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(
            new SslClientAuthenticationOptions
            {
                TargetHost = "127.0.0.1",
                ClientCertificates = [ClientCertificate],
                RemoteCertificateValidationCallback = ValidateServer,
            },
            cancellationToken);

        // In TLS 1.3 the server checks our certificate after our side of the handshake is done: only a reply proves it.
        string? reply;
        try
        {
            await tls.WriteAsync(Encoding.ASCII.GetBytes(probe.Ping), cancellationToken);
            reply = await ReadLineAsync(tls, cancellationToken);
        }
        catch (IOException e)
        {
            throw ClientCertificateRefused(e);
        }

        if (reply is null)
        {
            throw ClientCertificateRefused(null);
        }

        if (!reply.StartsWith(probe.Pong, StringComparison.Ordinal))
        {
            throw new IOException($"The server answered '{reply}' instead of {probe.Pong}.");
        }
    }

    public void Dispose()
    {
        _ca.Dispose();
        ClientCertificate.Dispose();
    }

    private AuthenticationException ClientCertificateRefused(Exception? inner) => new(
        $"The server ended the TLS session right after the handshake: it refused the client certificate {_clientCertificatePath}.",
        inner);

    // Byte by byte, so nothing after the line (such as the TLS handshake after a greeting) is consumed; null at end of stream.
    private static async Task<string?> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        const int MaxLine = 64 * 1024;
        var line = new List<byte>();
        var one = new byte[1];
        while (line.Count < MaxLine)
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0)
            {
                return null;
            }

            if (one[0] == (byte)'\n')
            {
                return Encoding.ASCII.GetString([.. line]).TrimEnd('\r');
            }

            line.Add(one[0]);
        }

        throw new IOException($"The server sent a line longer than {MaxLine} bytes.");
    }
}
