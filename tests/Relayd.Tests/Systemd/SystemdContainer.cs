using Google.Protobuf;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Systemd;

/// <summary>
/// The packaged relay under a real systemd: boots this machine's own systemd in a throw-away container
/// (<c>systemd-nspawn -D / --volatile=yes</c> with temporary overlays on /etc, /usr and /var, so nothing reaches the
/// host), installs the .deb named by <c>RELAYD_DEB</c> with <c>dpkg -i</c>, writes a config with the test PKI and a
/// free loopback port, and starts <c>relayd.service</c>. The container shares the host's network, so tests connect
/// to the relay on 127.0.0.1:<see cref="Port"/> as partners alpha, beta and gamma.
/// </summary>
/// <remarks>
/// Needs root, <c>systemd-nspawn</c> (package systemd-container) and <c>RELAYD_DEB</c> (<c>.ci/run</c> builds it with
/// packaging/build-deb.sh); without them <see cref="SkipReason"/> says which is missing and every test skips.
/// Commands run inside through <c>nsenter</c> into the container's namespaces (<see cref="ExecAsync"/>). The
/// container is powered off (killed if it does not stop) and its temporary directory deleted on dispose.
/// </remarks>
public sealed class SystemdContainer : IAsyncLifetime
{
    /// <summary>Where the host's temporary directory (the .deb, the PKI files) appears inside the container.</summary>
    public const string HostDirectoryInside = "/relayd-test";

    public const string ConfigPath = "/etc/relayd/relayd.toml";

    /// <summary>What a command inside the container exited with and printed.</summary>
    public sealed record CommandResult(int ExitCode, string StandardOutput, string StandardError);

    public const string Unit = "relayd";
    private static readonly TimeSpan BootDeadline = TimeSpan.FromSeconds(120);

    private readonly ConcurrentQueue<string> _console = new();
    private readonly TestPki _pki = new();
    private string? _hostDirectory;
    private Process? _nspawn;
    private int _init;

    /// <summary>Why the tests cannot run here (not root, no systemd-nspawn, no RELAYD_DEB), or null when they can.</summary>
    public string? SkipReason { get; } = FindSkipReason();

    public TestPki Pki => _pki;

    /// <summary>The loopback port the relay in the container listens on.</summary>
    public int Port { get; } = RelaydConfigFile.FreePort();

    /// <summary>The loopback port of the relay's Prometheus endpoint ([metrics] listen).</summary>
    public int MetricsPort { get; } = RelaydConfigFile.FreePort();

    /// <summary>What the container printed on its console (boot messages), for failure messages.</summary>
    public string Console => string.Join('\n', _console);

    /// <summary>The package's version as dpkg installed it.</summary>
    public string PackageVersion { get; private set; } = "";

    /// <summary>Skips the calling test when <see cref="SkipReason"/> is set.</summary>
    public void SkipUnlessAvailable() => Assert.SkipWhen(SkipReason is not null, SkipReason ?? "");

    public async ValueTask InitializeAsync()
    {
        if (SkipReason is not null)
        {
            return;
        }

        _hostDirectory = Directory.CreateTempSubdirectory("relayd-systemd-test-").FullName;
        File.Copy(Environment.GetEnvironmentVariable("RELAYD_DEB")!, Path.Combine(_hostDirectory, "relayd.deb"));
        foreach (string file in new[] { _pki.ServerCertPath, _pki.ServerKeyPath, _pki.CaPath })
        {
            File.Copy(file, Path.Combine(_hostDirectory, Path.GetFileName(file)));
        }

        try
        {
            await BootAsync();
            await InstallAsync();
            await WriteFileAsync(ConfigPath, Config());
            await RequireAsync("systemctl", "start", Unit);
            await WaitForActiveAsync();

            // Every partner's test users opt in once, as its provider would before its users chat: tests then send to
            // a partner that is away (consent is durable, so it holds across the restarts the tests cause).
            foreach (string partner in (string[])["alpha", "beta", "gamma"])
            {
                await OptInAsync(partner);
            }
        }
        catch
        {
            // A fixture that failed to start is not always disposed: never leave a container running.
            await StopContainerAsync();
            throw;
        }
    }

    /// <summary>Runs <paramref name="argv"/> inside the container (as root, in its mount, PID, IPC and UTS namespaces).</summary>
    public Task<CommandResult> ExecAsync(params string[] argv) => ExecWithInputAsync(null, argv);

    /// <summary><see cref="ExecAsync"/> that fails the test unless the command exits 0; returns its standard output.</summary>
    public async Task<string> RequireAsync(params string[] argv)
    {
        CommandResult result = await ExecAsync(argv);
        if (result.ExitCode != 0)
        {
            throw new Xunit.Sdk.XunitException($"'{string.Join(' ', argv)}' in the container exited with {result.ExitCode}:\n{result.StandardOutput}{result.StandardError}\n{await JournalTextAsync()}");
        }

        return result.StandardOutput;
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="pathInside"/> (root-owned, mode 0644; directories created).</summary>
    public async Task WriteFileAsync(string pathInside, string text)
    {
        CommandResult result = await ExecWithInputAsync(Encoding.UTF8.GetBytes(text),
            "sh", "-c", "mkdir -p \"$(dirname \"$1\")\" && cat > \"$1\" && chmod 0644 \"$1\"", "sh", pathInside);
        Assert.True(result.ExitCode == 0, $"writing {pathInside} in the container failed: {result.StandardError}");
    }

    /// <summary><c>journalctl -u UNIT -o json</c> inside: one dictionary per entry (binary fields as UTF-8, repeated fields joined by newlines).</summary>
    public async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> JournalAsync(string unit = Unit, params string[] matches)
    {
        string json = await RequireAsync(["journalctl", "-u", unit, "-o", "json", "--no-pager", .. matches]);
        var entries = new List<IReadOnlyDictionary<string, string>>();
        foreach (string line in json.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using JsonDocument entry = JsonDocument.Parse(line);
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty field in entry.RootElement.EnumerateObject())
            {
                fields[field.Name] = JournalValue(field.Value);
            }

            entries.Add(fields);
        }

        return entries;
    }

    /// <summary>
    /// The cursor of the unit's newest journal entry ("" when it has none): pass it as <c>--after-cursor=</c> to
    /// <see cref="JournalAsync"/> to see only what was logged after this call.
    /// </summary>
    public async Task<string> JournalCursorAsync(string unit = Unit)
    {
        IReadOnlyList<IReadOnlyDictionary<string, string>> last = await JournalAsync(unit, "-n", "1");
        return last.Count == 0 ? "" : last[^1].GetValueOrDefault("__CURSOR", "");
    }

    /// <summary>The unit's main process id as systemd reports it (0 while none runs).</summary>
    public async Task<int> MainPidAsync() => int.Parse(await ShowAsync("MainPID"), CultureInfo.InvariantCulture);

    /// <summary>One property of the unit (<c>systemctl show -p NAME --value</c>).</summary>
    public async Task<string> ShowAsync(string property, string unit = Unit) =>
        (await RequireAsync("systemctl", "show", "-p", property, "--value", unit)).Trim();

    /// <summary>
    /// Waits until the unit is active with a main process other than <paramref name="notPid"/> (Type=notify: active
    /// means it sent READY=1, so the listener accepts).
    /// </summary>
    public async Task<int> WaitForActiveAsync(int notPid = 0, int seconds = 90)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        string state = "";
        while (DateTime.UtcNow < deadline)
        {
            // Both in one systemctl call: read apart, the state could be the old process's and the pid the new one's.
            Dictionary<string, string> shown = (await RequireAsync("systemctl", "show", "-p", "ActiveState", "-p", "MainPID", Unit))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(line => line.Split('=', 2))
                .Where(pair => pair.Length == 2)
                .ToDictionary(pair => pair[0], pair => pair[1], StringComparer.Ordinal);
            state = shown.GetValueOrDefault("ActiveState", "");
            int pid = int.TryParse(shown.GetValueOrDefault("MainPID"), NumberStyles.None, CultureInfo.InvariantCulture, out int main) ? main : 0;
            if (state == "active" && pid != 0 && pid != notPid)
            {
                return pid;
            }

            await Task.Delay(200);
        }

        throw new Xunit.Sdk.XunitException($"relayd.service not active with a new main process within {seconds} s (state {state}):\n{await JournalTextAsync()}");
    }

    public RelayClientOptions ClientOptions(string partnerId, bool receipts = true) => new()
    {
        Host = "localhost",
        Port = Port,
        Tls = new() { ClientCertificate = _pki.Partner(partnerId), RelayRoots = [_pki.Ca] },
        ReceiveReceipts = receipts,
    };

    /// <summary>
    /// Connects as <paramref name="partnerId"/> and opts in the users the tests send between (Envelopes.New's
    /// sender-1 and user-1), as a partner does: the packaged config keeps its default, <c>require_opt_in = true</c>,
    /// which is what an administrator installing the package runs.
    /// </summary>
    public async Task<RelayClient> ConnectAsync(string partnerId, bool receipts = true)
    {
        RelayClient client = await RelayClient.ConnectAsync(ClientOptions(partnerId, receipts), TestContext.Current.CancellationToken);
        await client.UpdateConsentAsync(
            ((string[])["sender-1", "user-1"]).Select(u => new ConsentChange { User = ByteString.CopyFromUtf8(u), Action = ConsentAction.ConsentGrant }),
            TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        return client;
    }

    /// <summary>
    /// Opts in the test users of <paramref name="partnerId"/> (see <see cref="ConnectAsync"/>) and disconnects: for a
    /// recipient partner that is away while envelopes are sent to it. Consent is durable, so it holds after restarts.
    /// </summary>
    public async Task OptInAsync(string partnerId)
    {
        await using RelayClient client = await ConnectAsync(partnerId, receipts: false);
    }

    /// <summary>Receives and acknowledges deliveries until every envelope of <paramref name="expected"/> arrived (others, left by earlier tests, are acknowledged too).</summary>
    public static async Task<HashSet<ByteString>> ReceiveAsync(RelayClient client, List<Envelope> expected, int seconds)
    {
        var wanted = expected.Select(e => e.MessageId).ToHashSet();
        var arrived = new HashSet<ByteString>();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(seconds));
        try
        {
            await foreach (Deliver delivery in client.ReadDeliveriesAsync(deadline.Token))
            {
                await client.AcknowledgeAsync(delivery);
                if (wanted.Contains(delivery.Envelope.MessageId) && arrived.Add(delivery.Envelope.MessageId) && arrived.Count == wanted.Count)
                {
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            // The deadline: the caller reports what is missing.
        }

        return arrived;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopContainerAsync();
        }
        finally
        {
            _pki.Dispose();
            if (_hostDirectory is not null)
            {
                Directory.Delete(_hostDirectory, recursive: true);
            }
        }
    }

    /// <summary>The relay's config: the test PKI (copied to /etc/relayd/tls), partners alpha, beta and gamma.</summary>
    public string Config(string extraTables = "", string extraPartners = "") => $"""
        [relay]
        listen = "127.0.0.1:{Port}"
        relay_id = "relayd-systemd-test"

        [tls]
        certificate = "/etc/relayd/tls/server.crt"
        key = "/etc/relayd/tls/server.key"
        partner_ca = "/etc/relayd/tls/ca.crt"

        [wal]
        dir = "/var/lib/relayd/wal"
        {RelaydProcess.DefaultWalKeys}

        [media]
        spool_dir = "/var/lib/relayd/spool"

        [limits]
        shutdown_timeout_ms = 3000

        [metrics]
        listen = "127.0.0.1:{MetricsPort}"

        {extraTables}

        [[partners]]
        id = "alpha"

        [[partners]]
        id = "beta"

        [[partners]]
        id = "gamma"
        {extraPartners}
        """;

    private static string? FindSkipReason()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            return "the systemd tests boot a container with systemd-nspawn and need root (.ci/run runs them as root)";
        }

        if (!File.Exists("/usr/bin/systemd-nspawn") || !File.Exists("/usr/bin/nsenter"))
        {
            return "systemd-nspawn or nsenter is missing (apt-get install systemd-container util-linux)";
        }

        string? deb = Environment.GetEnvironmentVariable("RELAYD_DEB");
        if (string.IsNullOrEmpty(deb) || !File.Exists(deb))
        {
            return $"RELAYD_DEB does not name a built package ('{deb}'): run packaging/build-deb.sh and set RELAYD_DEB=artifacts/relayd_<version>_amd64.deb";
        }

        return null;
    }

    private async Task BootAsync()
    {
        string machine = "relayd-test-" + Guid.NewGuid().ToString("N")[..8];
        var start = new ProcessStartInfo("systemd-nspawn")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The host's own root, read-only underneath: empty upper layers (tmpfs) take every write, dpkg's included.
        // No --private-network: the relay listens on the host's loopback, where the test process connects.
        foreach (string argument in new[]
        {
            "-D", "/", "--volatile=yes", "--overlay=/etc::/etc", "--overlay=/usr::/usr", "--overlay=/var::/var",
            "--register=no", "--keep-unit", $"--machine={machine}", $"--bind-ro={_hostDirectory}:{HostDirectoryInside}",
            "-b", "--", "systemd.unit=multi-user.target",
        })
        {
            start.ArgumentList.Add(argument);
        }

        var nspawn = new Process { StartInfo = start };
        nspawn.OutputDataReceived += (_, e) => Record(e.Data);
        nspawn.ErrorDataReceived += (_, e) => Record(e.Data);
        nspawn.Start();
        nspawn.BeginOutputReadLine();
        nspawn.BeginErrorReadLine();
        nspawn.StandardInput.Close();
        _nspawn = nspawn;

        DateTime deadline = DateTime.UtcNow + BootDeadline;
        while ((_init = FindChildInit(nspawn.Id)) == 0)
        {
            if (nspawn.HasExited || DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException($"systemd-nspawn did not start systemd ({(nspawn.HasExited ? $"exited with {nspawn.ExitCode}" : "timed out")}):\n{Console}");
            }

            await Task.Delay(50);
        }

        // is-system-running --wait returns once boot is done: "running", or "degraded" when some unit of this
        // machine's own setup failed in the container (not ours to judge).
        string state = "";
        while (DateTime.UtcNow < deadline)
        {
            CommandResult result = await ExecAsync("systemctl", "is-system-running", "--wait");
            state = result.StandardOutput.Trim();
            if (state is "running" or "degraded")
            {
                return;
            }

            await Task.Delay(200);
        }

        throw new Xunit.Sdk.XunitException($"the container's systemd did not finish booting within {BootDeadline.TotalSeconds} s (state '{state}'):\n{Console}");
    }

    private async Task InstallAsync()
    {
        // policy-rc.d (as in Docker images) may keep postinst from starting the unit; the fixture starts it itself.
        await RequireAsync("dpkg", "-i", $"{HostDirectoryInside}/relayd.deb");
        PackageVersion = (await RequireAsync("dpkg-query", "-W", "-f", "${Version}", "relayd")).Trim();
        await RequireAsync("sh", "-c", $"""
            install -d -m 0750 -g relayd /etc/relayd/tls &&
            install -m 0640 -g relayd {HostDirectoryInside}/server.crt {HostDirectoryInside}/server.key {HostDirectoryInside}/ca.crt /etc/relayd/tls/
            """);
    }

    private async Task<CommandResult> ExecWithInputAsync(byte[]? input, params string[] argv)
    {
        if (_init == 0)
        {
            throw new InvalidOperationException("the container is not running");
        }

        string[] nsenter = ["--target", _init.ToString(CultureInfo.InvariantCulture), "--mount", "--uts", "--ipc", "--pid", "--", .. argv];
        ExternalProcess.Result result = await ExternalProcess.RunAsync("nsenter", nsenter, input, timeoutSeconds: 120);
        return new CommandResult(result.ExitCode, result.StandardOutput, result.StandardError);
    }

    private async Task<string> JournalTextAsync()
    {
        CommandResult journal = await ExecAsync("journalctl", "-u", Unit, "--no-pager", "-n", "60");
        return $"journalctl -u {Unit}:\n{journal.StandardOutput}";
    }

    private async Task StopContainerAsync()
    {
        if (_nspawn is not { } nspawn)
        {
            return;
        }

        try
        {
            if (!nspawn.HasExited && _init != 0)
            {
                await ExecAsync("systemctl", "poweroff", "--no-block");
                using var poweroff = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await nspawn.WaitForExitAsync(poweroff.Token);
                }
                catch (OperationCanceledException)
                {
                    // SIGKILL to the container's PID 1 ends every process in its PID namespace, then nspawn exits.
                    const int SigKill = 9;
                    _ = NativeMethods.kill(_init, SigKill);
                }
            }

            if (!nspawn.HasExited)
            {
                using var killed = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await nspawn.WaitForExitAsync(killed.Token);
                }
                catch (OperationCanceledException)
                {
                    nspawn.Kill(entireProcessTree: true);
                    await nspawn.WaitForExitAsync();
                }
            }
        }
        finally
        {
            nspawn.Dispose();
            _nspawn = null;
            _init = 0;
        }
    }

    /// <summary>The pid of the child of <paramref name="parent"/> that runs systemd (the container's PID 1), or 0.</summary>
    private static int FindChildInit(int parent)
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            try
            {
                string[] status = File.ReadAllLines(Path.Combine(dir, "status"));
                bool isSystemd = status.Any(l => l == "Name:\tsystemd");
                bool isChild = status.Any(l => l == $"PPid:\t{parent}");
                if (isSystemd && isChild)
                {
                    return pid;
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
        }

        return 0;
    }

    private static string JournalValue(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        // Binary field: an array of byte values. Repeated field: an array of strings (or of such arrays).
        JsonValueKind.Array when value.EnumerateArray().All(b => b.ValueKind == JsonValueKind.Number) =>
            Encoding.UTF8.GetString(value.EnumerateArray().Select(b => b.GetByte()).ToArray()),
        JsonValueKind.Array => string.Join('\n', value.EnumerateArray().Select(JournalValue)),
        _ => value.ToString(),
    };

    private void Record(string? line)
    {
        if (line is not null)
        {
            _console.Enqueue(line);
        }
    }
}
