namespace Relayd.Tests.Infrastructure;

/// <summary>
/// <c>openssl s_client</c> as an independent TLS peer: what it prints is what a non-.NET partner sees (session reuse,
/// alerts). It sends nothing and reads until the relay closes (which the handshake timeout bounds).
/// </summary>
internal static class OpenSslClient
{
    /// <summary>Connects with TLS 1.3, optionally with a client certificate and a saved session; returns what it printed.</summary>
    public static async Task<string> ConnectAsync(TestRelay relay, (string Cert, string Key)? identity = null, string? sessionOut = null, string? sessionIn = null)
    {
        List<string> arguments =
        [
            "s_client", "-connect", $"127.0.0.1:{relay.Port}", "-servername", "localhost", "-tls1_3",
            "-CAfile", relay.Pki.CaPath, "-verify_return_error", "-ign_eof",
        ];
        if (identity is { } id)
        {
            arguments.AddRange(["-cert", id.Cert, "-key", id.Key]);
        }

        if (sessionOut is not null)
        {
            arguments.AddRange(["-sess_out", sessionOut]);
        }

        if (sessionIn is not null)
        {
            arguments.AddRange(["-sess_in", sessionIn]);
        }

        ExternalProcess.Result result = await ExternalProcess.RunAsync("openssl", arguments, standardInput: [], timeoutSeconds: 30);
        return result.StandardOutput + "\n" + result.StandardError;
    }
}
