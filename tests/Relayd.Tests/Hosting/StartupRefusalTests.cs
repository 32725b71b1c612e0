using System.Numerics;
using Relayd.Security;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// Whatever would stop <c>relayd run</c> from starting is caught by <c>relayd check-config</c> first, and either
/// command refuses with one line naming the key, the file and the reason: never "OK" and then a stack trace.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class StartupRefusalTests : IDisposable
{
    private const int BadConfig = 78;
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    public static TheoryData<string, string, string> BrokenTlsFiles => new()
    {
        // case, the key that must be named, a word of the reason
        { "garbage key", "tls.key", "private key" },
        { "garbage certificate", "tls.certificate", "certificate" },
        { "key of another certificate", "tls.key", "does not match" },
        { "empty partner CA bundle", "tls.partner_ca", "no certificate" },
        { "garbage CRL", "tls.crl", "not a CRL" },
        { "CRL of another CA", "tls.crl", "not signed" },
        { "key path is a directory", "tls.key", "is a directory" },
        { "certificate file missing", "tls.certificate", "not found" },
        { "key readable by others", "tls.key", "accessible by others (mode 0644)" },
    };

    [Theory]
    [MemberData(nameof(BrokenTlsFiles))]
    public async Task Check_config_refuses_a_broken_tls_file_naming_its_key_file_and_line(string brokenCase, string key, string reason)
    {
        (string config, string file) = WriteConfigWith(brokenCase);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("check-config", "--config", config);

        string[] lines = CliAssert.Refusal(result, BadConfig, lines: 2); // the problem, then the count
        Assert.Contains($"{config}:{LineOf(config, key)}: {key}: {file}", lines[0], StringComparison.Ordinal);
        Assert.Contains(reason, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("OK", result.StandardOutput, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(BrokenTlsFiles))]
    public async Task Run_refuses_a_broken_tls_file_with_one_line_and_no_stack_trace(string brokenCase, string key, string reason)
    {
        (string config, string file) = WriteConfigWith(brokenCase);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("run", "--config", config);

        string line = Assert.Single(CliAssert.Refusal(result, BadConfig));
        Assert.StartsWith("relayd: refusing to start: ", line, StringComparison.Ordinal);
        Assert.Contains($"{key}: {file}", line, StringComparison.Ordinal);
        Assert.Contains(reason, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_relay_on_the_same_write_ahead_log_is_refused_with_one_line_and_no_stack_trace()
    {
        string wal = Path.Combine(_pki.Directory, "shared-wal");
        string table = $"[wal]\ndir = \"{wal}\"\nreserve_bytes = 0\n";
        await using var first = new RelaydProcess(_pki, walDirectory: wal, walKeys: "reserve_bytes = 0");
        await first.StartAsync();
        string second = RelaydConfigFile.Write(_pki, "second", RelaydConfigFile.FreePort(), table);

        ExternalProcess.Result result = await ExternalProcess.RunRelaydAsync("run", "--config", second);

        string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 65));
        Assert.Contains($"the WAL in {wal} is in use by another process", line, StringComparison.Ordinal);
        CliAssert.NoStackTrace(result.StandardOutput);
    }

    /// <summary>A config whose [tls] table has the broken file of <paramref name="brokenCase"/>; returns it and that file.</summary>
    private (string Config, string File) WriteConfigWith(string brokenCase)
    {
        string certificate = _pki.ServerCertPath;
        string key = _pki.ServerKeyPath;
        string partnerCa = _pki.CaPath;
        string? crl = null;
        string garbage = Path.Combine(_pki.Directory, "garbage.pem");
        File.WriteAllText(garbage, "this is not PEM\n");
        string broken;
        switch (brokenCase)
        {
            case "garbage key":
                broken = key = garbage;
                break;
            case "garbage certificate":
                broken = certificate = garbage;
                break;
            case "key of another certificate":
                broken = key = _pki.WritePartner("alpha").Key;
                break;
            case "empty partner CA bundle":
                broken = partnerCa = Path.Combine(_pki.Directory, "empty-ca.crt");
                File.WriteAllText(partnerCa, "");
                break;
            case "garbage CRL":
                broken = crl = garbage;
                break;
            case "CRL of another CA":
                broken = crl = Path.Combine(_pki.Directory, "other.crl");
                File.WriteAllBytes(crl, CertificateFactory.CreateCrl(_pki.OtherCa, [], BigInteger.One));
                break;
            case "key path is a directory":
                broken = key = _pki.Directory;
                break;
            case "certificate file missing":
                broken = certificate = Path.Combine(_pki.Directory, "missing.crt");
                break;
            case "key readable by others":
                broken = key = Path.Combine(_pki.Directory, "world-readable.key");
                File.Copy(_pki.ServerKeyPath, key);
                File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(brokenCase), brokenCase, "no such case");
        }

        string config = Path.Combine(_pki.Directory, "relayd.toml");
        File.WriteAllText(config, $"""
            [relay]
            listen = "127.0.0.1:{RelaydConfigFile.FreePort()}"

            [tls]
            certificate = "{certificate}"
            key = "{key}"
            partner_ca = "{partnerCa}"
            {(crl is null ? "" : $"crl = \"{crl}\"")}

            [wal]
            dir = "{Path.Combine(_pki.Directory, "wal")}"
            reserve_bytes = 0

            [media]
            spool_dir = "{Path.Combine(_pki.Directory, "spool")}"

            [[partners]]
            id = "alpha"
            """);
        return (config, broken);
    }

    private static int LineOf(string config, string key)
    {
        string name = key[(key.IndexOf('.', StringComparison.Ordinal) + 1)..];
        return Array.FindIndex(File.ReadAllLines(config), l => l.TrimStart().StartsWith(name + " =", StringComparison.Ordinal)) + 1;
    }
}
