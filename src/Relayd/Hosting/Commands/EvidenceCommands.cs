using System.CommandLine;
using System.Globalization;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Support.Evidence;

namespace Relayd.Hosting.Commands;

/// <summary>
/// <c>relayd evidence public-key</c>, <c>relayd evidence verify</c> and <c>relayd pki init-evidence</c>: the signed
/// delivery evidence's key and offline checks (docs/evidence.md). Verify needs nothing but the proof and the key.
/// </summary>
internal static class EvidenceCommands
{
    // EX_DATAERR: the proof (or key) was read but does not hold.
    private const int ProofRefused = 65;

    public static Command Create()
    {
        var evidence = new Command("evidence", "Signed delivery evidence: print the relay's public key, verify a saved proof offline (docs/evidence.md)");
        evidence.Add(PublicKey());
        evidence.Add(Verify());
        return evidence;
    }

    /// <summary><c>relayd pki init-evidence [--out PATH]</c>: a new Ed25519 signing key, mode 0600; never replaces one.</summary>
    public static Command InitEvidence()
    {
        var output = new Option<FileInfo>("--out") { Description = "Where to write the key (PKCS#8 PEM, mode 0600)", DefaultValueFactory = _ => new FileInfo("/etc/relayd/evidence.key") };
        var command = new Command("init-evidence", "Create the relay's Ed25519 evidence signing key (refuses to replace an existing file), then set [evidence] key to it") { output };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(output)!.FullName;
            if (File.Exists(path))
            {
                Console.Error.WriteLine($"relayd: {path} exists: refusing to replace an evidence key (proofs signed by it would no longer verify with a new one)");
                return ExitCodes.CannotCreate;
            }

            EvidenceKey key;
            try
            {
                key = EvidenceKey.CreateFile(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"relayd: cannot create {path}: {ex.Message}");
                return ExitCodes.CannotCreate;
            }

            Console.WriteLine($"created {path} (mode 0600)");
            PrintPublicKey(key.PublicKey);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command PublicKey()
    {
        var config = new Option<FileInfo>("--config") { Description = "A relayd.toml: the key named by its [evidence] key" };
        var keyFile = new Option<FileInfo>("--key") { Description = "The signing key file itself" };
        var command = new Command("public-key", "Print the evidence public key (hex, base64 and the SPKI PEM openssl takes) that partners verify proofs with") { config, keyFile };
        command.SetAction(parse =>
        {
            FileInfo? configFile = parse.GetValue(config), key = parse.GetValue(keyFile);
            if ((configFile is null) == (key is null))
            {
                Console.Error.WriteLine("relayd: give either --config FILE or --key FILE");
                return ExitCodes.Usage;
            }

            string path;
            if (configFile is not null)
            {
                RelayOptions options;
                try
                {
                    options = RelayConfigLoader.Load(configFile.FullName);
                }
                catch (ConfigException ex)
                {
                    Console.Error.WriteLine(ex.Message);
                    return ExitCodes.BadConfig;
                }

                if (options.Evidence.KeyPath is not { } configured)
                {
                    Console.Error.WriteLine($"relayd: {configFile.FullName} names no [evidence] key: evidence is off");
                    return ExitCodes.BadConfig;
                }

                path = configured;
            }
            else
            {
                path = key!.FullName;
            }

            if (EvidenceKey.TryLoad(path, out string? problem) is not { } loaded)
            {
                Console.Error.WriteLine($"relayd: evidence key {path}: {problem}");
                return File.Exists(path) ? ExitCodes.BadConfig : ExitCodes.NoInput;
            }

            PrintPublicKey(loaded.PublicKey);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Verify()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "A saved proof (docs/evidence.md, \"Proof files\")" };
        var publicKey = new Option<FileInfo>("--public-key") { Description = "The relay's evidence public key: a PEM, or 64 hex digits, or base64 of the 32 bytes", Required = true };
        var command = new Command("verify", "Check a saved proof offline: the tree head's Ed25519 signature, the statement's layout and its audit path to the signed root; prints the statement") { file, publicKey };
        command.SetAction(parse =>
        {
            string proofPath = parse.GetValue(file)!.FullName, keyPath = parse.GetValue(publicKey)!.FullName;
            string proofText, keyText;
            try
            {
                proofText = File.ReadAllText(proofPath);
                keyText = File.ReadAllText(keyPath);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"relayd: evidence verify: {ex.Message}");
                return ExitCodes.NoInput;
            }

            if (EvidenceKey.ParsePublicKey(keyText) is not { } key)
            {
                Console.Error.WriteLine($"relayd: evidence verify: {keyPath} is not an Ed25519 public key (a \"BEGIN PUBLIC KEY\" PEM, 64 hex digits, or base64 of 32 bytes)");
                return ProofRefused;
            }

            EvidenceProof proof;
            try
            {
                proof = EvidenceProofFile.Parse(proofText);
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"relayd: evidence verify: {proofPath}: {ex.Message}");
                return ProofRefused;
            }

            if (EvidenceVerifier.Verify(proof, key) is { } failure)
            {
                Console.Error.WriteLine($"relayd: evidence verify: {proofPath}: NOT verified: {failure}");
                return ProofRefused;
            }

            Statement statement = EvidenceLayouts.ParseStatement(proof.Statement.Span, out _)!;
            TreeHeadFields head = EvidenceLayouts.ParseTreeHead(proof.TreeHead.Span, out _)!;
            Console.WriteLine($"verified: statement {proof.LeafIndex} of tree {head.TreeId} (size {head.TreeSize}) of relay '{head.RelayId}', head signed at {Time(head.TimestampMs)} by {Convert.ToHexStringLower(key)}");
            foreach ((string name, string value) in Fields(statement))
            {
                Console.WriteLine($"  {name,-20} {value}");
            }

            return ExitCodes.Ok;
        });
        return command;
    }

    private static IEnumerable<(string Name, string Value)> Fields(Statement s)
    {
        yield return ("kind", s.Kind == StatementKind.Accepted ? "accepted" : "delivery");
        yield return ("relay_id", s.RelayId);
        yield return ("sender_partner", s.SenderPartner);
        if (s.Kind == StatementKind.Accepted)
        {
            yield return ("sender_user_hash", Convert.ToHexStringLower(s.SenderUserHash));
        }

        yield return ("recipient_partner", s.RecipientPartner);
        if (s.Kind == StatementKind.Accepted)
        {
            yield return ("recipient_user_hash", Convert.ToHexStringLower(s.RecipientUserHash));
        }

        yield return ("message_id", s.MessageId.ToString("x32", CultureInfo.InvariantCulture));
        if (s.Kind == StatementKind.Accepted)
        {
            yield return ("ciphertext_sha256", Convert.ToHexStringLower(s.CiphertextSha256));
            yield return ("accepted_at", Time(s.AcceptedAtMs));
        }
        else
        {
            yield return ("status", s.Status switch { DeliveryStatus.Acknowledged => "acknowledged", DeliveryStatus.Expired => "expired", DeliveryStatus.Refused => "refused (consent revoked while queued)", _ => $"unknown ({(byte)s.Status})" });
            yield return (s.Status switch { DeliveryStatus.Expired => "expired_at", DeliveryStatus.Refused => "refused_at", _ => "delivered_at" }, Time(s.DeliveredAtMs));
            if (s.Status == DeliveryStatus.Acknowledged)
            {
                yield return ("acked_at", Time(s.AckedAtMs));
            }
        }
    }

    private static string Time(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture) + $" ({unixMs})";

    private static void PrintPublicKey(byte[] publicKey)
    {
        Console.WriteLine($"evidence public key (hex):    {Convert.ToHexStringLower(publicKey)}");
        Console.WriteLine($"evidence public key (base64): {Convert.ToBase64String(publicKey)}");
        Console.Write(EvidenceKey.PublicKeyPem(publicKey));
    }
}
