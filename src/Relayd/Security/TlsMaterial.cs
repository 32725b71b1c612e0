using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using X509Crl = Org.BouncyCastle.X509.X509Crl;
using X509CrlParser = Org.BouncyCastle.X509.X509CrlParser;

namespace Relayd.Security;

/// <summary>A file named under [tls] that the relay cannot use: the key naming it, its path and why.</summary>
public sealed record TlsProblem(string Key, string Path, string Reason)
{
    /// <summary>Formats as <c>key: path: reason</c>.</summary>
    public override string ToString() => $"{Key}: {Path}: {Reason}";
}

/// <summary>Thrown when the files named under [tls] cannot be used; the message lists every problem.</summary>
public sealed class TlsMaterialException : Exception
{
    /// <summary>Creates the exception for a non-empty list of problems.</summary>
    public TlsMaterialException(IReadOnlyList<TlsProblem> problems)
        : base(string.Join("; ", problems))
    {
        Problems = problems;
    }

    /// <summary>Every problem found.</summary>
    public IReadOnlyList<TlsProblem> Problems { get; }
}

/// <summary>
/// The relay's TLS files, loaded and cross-checked: the server certificate with the private key that matches it, the
/// partner CA bundle (at least one certificate) and the optional CRL (parseable, signed by one of those CAs).
/// <c>relayd check-config</c> runs the same checks, so whatever would stop <c>relayd run</c> here is reported there first.
/// </summary>
internal sealed class TlsMaterial
{
    private TlsMaterial(X509Certificate2 serverCertificate, X509Certificate2Collection partnerRoots, X509Crl? crl)
    {
        ServerCertificate = serverCertificate;
        PartnerRoots = partnerRoots;
        Crl = crl;
    }

    /// <summary>The server certificate with its private key, in a form SslStream on Linux can use.</summary>
    public X509Certificate2 ServerCertificate { get; }

    public X509Certificate2Collection PartnerRoots { get; }

    public X509Crl? Crl { get; }

    /// <exception cref="TlsMaterialException">A file is missing, unreadable, malformed or does not fit the others.</exception>
    public static TlsMaterial Load(TlsOptions tls)
    {
        var problems = new List<TlsProblem>();
        return TryLoad(tls, problems) ?? throw new TlsMaterialException(problems);
    }

    /// <summary>Every problem with the files named in <paramref name="tls"/>; empty when the relay can use them.</summary>
    public static IReadOnlyList<TlsProblem> Check(TlsOptions tls)
    {
        var problems = new List<TlsProblem>();
        TryLoad(tls, problems);
        return problems;
    }

    private static TlsMaterial? TryLoad(TlsOptions tls, List<TlsProblem> problems)
    {
        X509Certificate2? server = LoadServerCertificate(tls, problems);
        X509Certificate2Collection? roots = LoadPartnerRoots(tls.PartnerCaPath, problems);
        X509Crl? crl = string.IsNullOrEmpty(tls.CrlPath) ? null : LoadCrl(tls.CrlPath, roots, problems);
        return problems.Count == 0 ? new TlsMaterial(server!, roots!, crl) : null;
    }

    private static X509Certificate2? LoadServerCertificate(TlsOptions tls, List<TlsProblem> problems)
    {
        const string CertificateKey = "tls.certificate";
        const string KeyKey = "tls.key";
        string? certificatePem = ReadText(CertificateKey, tls.CertificatePath, problems);
        string? keyPem = ReadText(KeyKey, tls.KeyPath, problems);
        if (certificatePem is null)
        {
            return null;
        }

        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(certificatePem);
        }
        catch (CryptographicException)
        {
            problems.Add(new TlsProblem(CertificateKey, tls.CertificatePath, "not a PEM certificate (no well-formed \"BEGIN CERTIFICATE\" block)"));
            return null;
        }

        using (certificate)
        {
            if (keyPem is null)
            {
                return null;
            }

            using X509Certificate2? withKey = WithPrivateKey(certificate, keyPem, tls, problems);
            if (withKey is not null && ReadableByOthers(tls.KeyPath) is { } mode)
            {
                // As the evidence key is checked: a key others can read is a key others may have copied. Group read
                // stays allowed: the package's layout is root:relayd 0640 (relayd(8), FILES).
                problems.Add(new TlsProblem(KeyKey, tls.KeyPath, $"the private key is accessible by others (mode {mode}); allow the owner and group relayd only (chmod 640 {tls.KeyPath})"));
                return null;
            }

            // A PEM-loaded key is ephemeral; SslStream on Linux needs a PKCS#12 round trip to use it for a server certificate.
            return withKey is null ? null : X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        }
    }

    private static X509Certificate2? WithPrivateKey(X509Certificate2 certificate, string keyPem, TlsOptions tls, List<TlsProblem> problems)
    {
        // Import the key on its own first, so that "not a key" and "the key of another certificate" are told apart.
        AsymmetricAlgorithm key;
        using (ECDsa? ecdsa = certificate.GetECDsaPublicKey())
        using (RSA? rsa = ecdsa is null ? certificate.GetRSAPublicKey() : null)
        {
            if (ecdsa is null && rsa is null)
            {
                problems.Add(new TlsProblem("tls.certificate", tls.CertificatePath, "its key is neither ECDSA nor RSA"));
                return null;
            }

            key = ecdsa is not null ? ECDsa.Create() : RSA.Create();
            (string algorithm, string label) = ecdsa is not null ? ("ECDSA", "EC") : ("RSA", "RSA");
            try
            {
                key.ImportFromPem(keyPem);
            }
            catch (ArgumentException)
            {
                key.Dispose();
                problems.Add(new TlsProblem("tls.key", tls.KeyPath, $"not a PEM private key (expected an unencrypted \"BEGIN PRIVATE KEY\" or \"BEGIN {label} PRIVATE KEY\" block)"));
                return null;
            }
            catch (CryptographicException ex)
            {
                key.Dispose();
                problems.Add(new TlsProblem("tls.key", tls.KeyPath, $"not a usable {algorithm} private key, as tls.certificate needs ({ex.Message.TrimEnd('.')})"));
                return null;
            }
        }

        using (key)
        {
            try
            {
                return key is ECDsa ecdsaKey ? certificate.CopyWithPrivateKey(ecdsaKey) : certificate.CopyWithPrivateKey((RSA)key);
            }
            catch (Exception ex) when (ex is ArgumentException or CryptographicException)
            {
                problems.Add(new TlsProblem("tls.key", tls.KeyPath, $"does not match the certificate in tls.certificate ({tls.CertificatePath})"));
                return null;
            }
        }
    }

    private static X509Certificate2Collection? LoadPartnerRoots(string path, List<TlsProblem> problems)
    {
        const string Key = "tls.partner_ca";
        if (ReadText(Key, path, problems) is not { } pem)
        {
            return null;
        }

        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPem(pem);
        }
        catch (CryptographicException)
        {
            problems.Add(new TlsProblem(Key, path, "a \"BEGIN CERTIFICATE\" block in it is malformed"));
            return null;
        }

        if (roots.Count == 0)
        {
            problems.Add(new TlsProblem(Key, path, "holds no certificate (expected a PEM bundle of the CA certificates that issue partner certificates)"));
            return null;
        }

        return roots;
    }

    private static X509Crl? LoadCrl(string path, X509Certificate2Collection? roots, List<TlsProblem> problems)
    {
        const string Key = "tls.crl";
        if (ReadBytes(Key, path, problems) is not { } bytes)
        {
            return null;
        }

        X509Crl? crl;
        try
        {
            crl = new X509CrlParser().ReadCrl(bytes);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // BouncyCastle reports bad input with a family of exceptions (ASN.1, CRL, I/O); any of them means "not a CRL".
            crl = null;
        }

        if (crl is null)
        {
            problems.Add(new TlsProblem(Key, path, "not a CRL (expected PEM \"BEGIN X509 CRL\" or DER)"));
            return null;
        }

        if (roots is not null && !PartnerCertificateValidator.IsSignedByOneOf(crl, roots))
        {
            problems.Add(new TlsProblem(Key, path, "not signed by a certificate in tls.partner_ca"));
            return null;
        }

        return crl;
    }

    /// <summary>The file's mode in octal when others have any access to it; null when they have none (or not on Unix).</summary>
    private static string? ReadableByOthers(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return null;
        }

        UnixFileMode mode = File.GetUnixFileMode(path);
        const UnixFileMode Others = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        return (mode & Others) != 0 ? Convert.ToString((int)mode, 8).PadLeft(4, '0') : null;
    }

    private static string? ReadText(string key, string path, List<TlsProblem> problems) =>
        ReadBytes(key, path, problems) is { } bytes ? System.Text.Encoding.UTF8.GetString(bytes) : null;

    private static byte[]? ReadBytes(string key, string path, List<TlsProblem> problems)
    {
        if (path.Length == 0)
        {
            problems.Add(new TlsProblem(key, path, "not set"));
            return null;
        }

        if (Directory.Exists(path))
        {
            problems.Add(new TlsProblem(key, path, "is a directory, not a file"));
            return null;
        }

        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            problems.Add(new TlsProblem(key, path, "file not found"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problems.Add(new TlsProblem(key, path, $"cannot be read ({ex.Message.TrimEnd('.')})"));
        }

        return null;
    }
}
