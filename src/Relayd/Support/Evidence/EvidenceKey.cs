using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Relayd.Support.Evidence;

/// <summary>
/// The relay's Ed25519 (RFC 8032) evidence signing key: what signs tree heads. Kept on disk as an unencrypted PKCS#8
/// PEM ("BEGIN PRIVATE KEY", the form <c>openssl genpkey -algorithm ed25519</c> writes), mode 0600.
/// </summary>
internal sealed class EvidenceKey
{
    // PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410 section 7) is fixed-length: this prefix, then the 32-byte seed.
    private static readonly byte[] Pkcs8Prefix = Convert.FromHexString("302e020100300506032b657004220420");

    // SubjectPublicKeyInfo for Ed25519 (RFC 8410 section 4): this prefix, then the 32-byte public key.
    private static readonly byte[] SpkiPrefix = Convert.FromHexString("302a300506032b6570032100");

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode GroupOrOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private readonly Ed25519PrivateKeyParameters _privateKey;

    private EvidenceKey(Ed25519PrivateKeyParameters privateKey)
    {
        _privateKey = privateKey;
        PublicKey = privateKey.GeneratePublicKey().GetEncoded();
    }

    /// <summary>The raw 32-byte public key (what Welcome.evidence_public_key carries).</summary>
    public byte[] PublicKey { get; }

    /// <summary>A key from its 32-byte RFC 8032 seed (tests, test vectors).</summary>
    public static EvidenceKey FromSeed(ReadOnlySpan<byte> seed) =>
        seed.Length == 32 ? new EvidenceKey(new Ed25519PrivateKeyParameters(seed)) : throw new ArgumentException("an Ed25519 seed is 32 bytes", nameof(seed));

    /// <summary>A new random key.</summary>
    public static EvidenceKey Generate() => FromSeed(RandomNumberGenerator.GetBytes(32));

    /// <summary>Ed25519 signature (64 bytes) over <paramref name="message"/>.</summary>
    public byte[] Sign(ReadOnlySpan<byte> message)
    {
        var signer = new Ed25519Signer();
        signer.Init(true, _privateKey);
        signer.BlockUpdate(message);
        return signer.GenerateSignature();
    }

    /// <summary>Whether <paramref name="signature"/> is a valid Ed25519 signature of <paramref name="message"/> by <paramref name="publicKey"/> (32 raw bytes).</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != 32 || signature.Length != 64)
        {
            return false;
        }

        var verifier = new Ed25519Signer();
        verifier.Init(false, new Ed25519PublicKeyParameters(publicKey));
        verifier.BlockUpdate(message);
        return verifier.VerifySignature(signature.ToArray());
    }

    /// <summary>The public key as PEM SubjectPublicKeyInfo, what <c>openssl pkeyutl -verify -pubin</c> takes.</summary>
    public static string PublicKeyPem(ReadOnlySpan<byte> publicKey) =>
        PemEncoding.WriteString("PUBLIC KEY", [.. SpkiPrefix, .. publicKey]) + "\n";

    /// <summary>Reads a public key given as 64 hex digits, base64 of 32 bytes, or a PEM "PUBLIC KEY"; null if it is none of them.</summary>
    public static byte[]? ParsePublicKey(string text)
    {
        text = text.Trim();
        if (text.Length == 64 && text.All(Uri.IsHexDigit))
        {
            return Convert.FromHexString(text);
        }

        if (text.Contains("-----BEGIN PUBLIC KEY-----", StringComparison.Ordinal))
        {
            try
            {
                PemFields pem = PemEncoding.Find(text);
                byte[] der = Convert.FromBase64String(text[pem.Base64Data]);
                return der.Length == SpkiPrefix.Length + 32 && der.AsSpan(0, SpkiPrefix.Length).SequenceEqual(SpkiPrefix) ? der[SpkiPrefix.Length..] : null;
            }
            catch (Exception ex) when (ex is ArgumentException or FormatException)
            {
                return null;
            }
        }

        byte[] raw = new byte[32];
        return Convert.TryFromBase64String(text, raw, out int written) && written == 32 ? raw : null;
    }

    /// <summary>Writes a new key to <paramref name="path"/> as PKCS#8 PEM, mode 0600 before any key byte is written. Refuses to replace a file.</summary>
    /// <exception cref="IOException">The file exists or cannot be written.</exception>
    public static EvidenceKey CreateFile(string path)
    {
        byte[] seed = RandomNumberGenerator.GetBytes(32);
        string pem = PemEncoding.WriteString("PRIVATE KEY", [.. Pkcs8Prefix, .. seed]) + "\n";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }

        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(pem);
        }

        return FromSeed(seed);
    }

    /// <summary>
    /// Loads the key at <paramref name="path"/>, or returns why it cannot be used (like the TLS key's problems: the
    /// path and the reason): missing, readable or writable by group or others, not an Ed25519 PKCS#8 PEM.
    /// </summary>
    public static EvidenceKey? TryLoad(string path, out string? problem)
    {
        problem = null;
        string text;
        try
        {
            if (!OperatingSystem.IsWindows())
            {
                UnixFileMode mode = File.GetUnixFileMode(path);
                if ((mode & GroupOrOthers) != 0)
                {
                    problem = $"the evidence signing key is accessible by group or others (mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')}); it must be 0600 (chmod 600 {path})";
                    return null;
                }
            }

            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = ex is FileNotFoundException or DirectoryNotFoundException ? "no such file (create one with: relayd pki init-evidence --out FILE)" : ex.Message;
            return null;
        }

        try
        {
            PemFields pem = PemEncoding.Find(text);
            if (!text[pem.Label].SequenceEqual("PRIVATE KEY"))
            {
                problem = "not an Ed25519 key: expected an unencrypted \"BEGIN PRIVATE KEY\" PEM block";
                return null;
            }

            byte[] der = Convert.FromBase64String(text[pem.Base64Data]);
            if (der.Length != Pkcs8Prefix.Length + 32 || !der.AsSpan(0, Pkcs8Prefix.Length).SequenceEqual(Pkcs8Prefix))
            {
                problem = "not an Ed25519 PKCS#8 private key (RFC 8410; e.g. openssl genpkey -algorithm ed25519)";
                return null;
            }

            return FromSeed(der.AsSpan(Pkcs8Prefix.Length));
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            problem = "not a PEM file (no well-formed \"BEGIN PRIVATE KEY\" block)";
            return null;
        }
    }
}
