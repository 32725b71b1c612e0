using Relayd.Support.Evidence;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Support.Evidence;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
/// <summary>The evidence key: Ed25519 as RFC 8032 defines it, its key file, and signatures openssl accepts.</summary>
public sealed class EvidenceSignatureTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("relayd-evidence-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Rfc8032_test_vector_1_signs_and_verifies()
    {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        EvidenceKey key = EvidenceKey.FromSeed(Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
        Assert.Equal("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", Convert.ToHexStringLower(key.PublicKey));
        byte[] signature = key.Sign([]);
        Assert.Equal("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b", Convert.ToHexStringLower(signature));
        Assert.True(EvidenceKey.Verify(key.PublicKey, [], signature));
        signature[0] ^= 1;
        Assert.False(EvidenceKey.Verify(key.PublicKey, [], signature));
    }

    [Fact]
    public void A_created_key_file_is_0600_and_loads_back_to_the_same_key()
    {
        string path = Path.Combine(_dir, "evidence.key");
        EvidenceKey created = EvidenceKey.CreateFile(path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        EvidenceKey? loaded = EvidenceKey.TryLoad(path, out string? problem);
        Assert.Null(problem);
        Assert.Equal(created.PublicKey, loaded!.PublicKey);
        Assert.Throws<IOException>(() => EvidenceKey.CreateFile(path)); // never replaces a key
    }

    [Fact]
    public void A_key_file_readable_by_group_or_others_is_refused_with_its_mode()
    {
        string path = Path.Combine(_dir, "evidence.key");
        EvidenceKey.CreateFile(path);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        Assert.Null(EvidenceKey.TryLoad(path, out string? problem));
        Assert.Contains("mode 0644", problem, StringComparison.Ordinal);
        Assert.Contains("chmod 600", problem, StringComparison.Ordinal);
        Assert.Null(EvidenceKey.TryLoad(Path.Combine(_dir, "missing.key"), out problem));
        Assert.Contains("no such file", problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_key_openssl_generated_loads_and_openssl_verifies_its_tree_head_signature_with_the_PEM_made_from_the_raw_key()
    {
        string keyPath = Path.Combine(_dir, "openssl.key");
        ExternalProcess.Result genpkey = await ExternalProcess.RunAsync("openssl", ["genpkey", "-algorithm", "ed25519", "-out", keyPath]);
        Assert.True(genpkey.ExitCode == 0, genpkey.StandardError);
        File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        EvidenceKey key = EvidenceKey.TryLoad(keyPath, out string? problem) ?? throw new InvalidOperationException(problem);

        byte[] head = EvidenceLayouts.TreeHead("relay-1", 1, 3, 1_764_000_000_000, new byte[32]);
        string headPath = Path.Combine(_dir, "head.bin"), sigPath = Path.Combine(_dir, "head.sig"), pubPath = Path.Combine(_dir, "pub.pem");
        await File.WriteAllBytesAsync(headPath, head);
        await File.WriteAllBytesAsync(sigPath, key.Sign(head));
        await File.WriteAllTextAsync(pubPath, EvidenceKey.PublicKeyPem(key.PublicKey));

        ExternalProcess.Result ok = await ExternalProcess.RunAsync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", headPath, "-sigfile", sigPath]);
        Assert.True(ok.ExitCode == 0, ok.StandardOutput + ok.StandardError);

        head[^1] ^= 1; // a flipped bit in the tree head
        await File.WriteAllBytesAsync(headPath, head);
        ExternalProcess.Result bad = await ExternalProcess.RunAsync("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", headPath, "-sigfile", sigPath]);
        Assert.NotEqual(0, bad.ExitCode);
    }

    [Fact]
    public void Public_keys_parse_from_hex_base64_and_PEM()
    {
        EvidenceKey key = EvidenceKey.Generate();
        Assert.Equal(key.PublicKey, EvidenceKey.ParsePublicKey(Convert.ToHexString(key.PublicKey)));
        Assert.Equal(key.PublicKey, EvidenceKey.ParsePublicKey(Convert.ToBase64String(key.PublicKey)));
        Assert.Equal(key.PublicKey, EvidenceKey.ParsePublicKey(EvidenceKey.PublicKeyPem(key.PublicKey)));
        Assert.Null(EvidenceKey.ParsePublicKey("not a key"));
    }
}
