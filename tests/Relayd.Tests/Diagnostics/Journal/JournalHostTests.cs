using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Relayd.Diagnostics;
using Relayd.Diagnostics.Journal;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Diagnostics.Journal;

/// <summary>
/// The real relayd process under a stand-in for systemd's journal: its stderr a stream socket named by
/// <c>JOURNAL_STREAM</c>, and a test datagram socket at <c>/run/systemd/journal/socket</c> (bind-mounted there in a
/// private mount namespace, so nothing outside the test sees it). Needs root and util-linux's <c>unshare</c>.
/// </summary>
public sealed partial class JournalHostTests : IDisposable
{
    private readonly JournalTestSocket _journal = new();
    private readonly string _pki = Directory.CreateTempSubdirectory("relayd-journal-pki-").FullName;

    [Fact]
    public async Task Under_the_journal_s_stream_relayd_logs_natively_and_nothing_to_stderr()
    {
        await using RelaydUnderJournal relayd = await StartAsync(journalStream: "$(stat -L -c %d:%i /proc/self/fd/2)");

        JournalDatagram listening = await ReceiveEventAsync("Listening");
        Assert.Equal(JournalMessageIds.Of(EventIds.Listening), listening["MESSAGE_ID"]);
        Assert.Equal("6", listening["PRIORITY"]);
        Assert.Equal("relayd", listening["SYSLOG_IDENTIFIER"]);

        // A connection that is no TLS at all: refused during TLS, a Warning naming the session and the remote.
        int port = int.Parse(PortRegex().Match(listening["MESSAGE"]).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        using (var garbage = new TcpClient())
        {
            await garbage.ConnectAsync(IPAddress.Loopback, port);
            await garbage.GetStream().WriteAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray());
            JournalDatagram refused = await ReceiveEventAsync("TlsRefused");
            Assert.Equal("4", refused["PRIORITY"]);
            Assert.StartsWith("127.0.0.1:", refused["RELAYD_REMOTE"], StringComparison.Ordinal);
            Assert.Matches("^[0-9]+$", refused["RELAYD_SESSION"]);
        }

        await relayd.StopAsync();
        _ = await ReceiveEventAsync("Stopped");
        Assert.Equal("", relayd.StandardError);
    }

    [Fact]
    public async Task With_a_JOURNAL_STREAM_that_is_not_its_stderr_relayd_logs_to_the_console()
    {
        await using RelaydUnderJournal relayd = await StartAsync(journalStream: "8:1"); // inherited from elsewhere

        // The console logger writes to stdout, as it did before the journal sink.
        _ = await relayd.StandardOutputContainingAsync("relayd relayd-dev listening on 127.0.0.1:");
        await relayd.StopAsync();

        Assert.Contains("Stopped; 0 sessions were still open", relayd.StandardOutput, StringComparison.Ordinal);
        Assert.False(_journal.HasPending, "a datagram reached the journal socket");
    }

    public void Dispose()
    {
        _journal.Dispose();
        try
        {
            Directory.Delete(_pki, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<JournalDatagram> ReceiveEventAsync(string name)
    {
        while (true)
        {
            JournalDatagram entry = await _journal.ReceiveAsync(); // fails the test after 10 s without one
            if (entry.Has("RELAYD_EVENT") && entry["RELAYD_EVENT"] == name)
            {
                return entry;
            }
        }
    }

    /// <summary>relayd dev in a private mount namespace where /run/systemd/journal is the test's directory, stderr a TCP socket to the test.</summary>
    private async Task<RelaydUnderJournal> StartAsync(string journalStream)
    {
        Assert.SkipUnless(TmpfsMount.RunningAsRoot, "needs root: a private mount namespace puts the test's socket at /run/systemd/journal/socket");
        Assert.SkipUnless(File.Exists("/usr/bin/unshare"), "needs util-linux's unshare");

        var stderr = new TcpListener(IPAddress.Loopback, 0);
        stderr.Start();
        int stderrPort = ((IPEndPoint)stderr.LocalEndpoint).Port;
        string relaydDll = Path.Combine(AppContext.BaseDirectory, "relayd.dll");
        string script = string.Join(" && ",
            "mount -t tmpfs tmpfs /run",
            "mkdir -p /run/systemd/journal",
            $"mount --bind '{Path.GetDirectoryName(_journal.Path)}' /run/systemd/journal",
            $"exec 2<>/dev/tcp/127.0.0.1/{stderrPort}", // fd 2 becomes a socket, as systemd's stream to the journal is
            $"export JOURNAL_STREAM={journalStream}",
            $"exec dotnet '{relaydDll}' dev --dir '{_pki}' --port 0");
        var start = new ProcessStartInfo("/usr/bin/unshare") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in (string[])["--mount", "--propagation", "private", "bash", "-c", script])
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Remove("JOURNAL_STREAM");
        start.Environment.Remove("INVOCATION_ID");
        Process process = Process.Start(start)!;
        using var accept = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        TcpClient connection;
        try
        {
            connection = await stderr.AcceptTcpClientAsync(accept.Token);
        }
        finally
        {
            stderr.Stop();
        }

        return new RelaydUnderJournal(process, connection);
    }

    [GeneratedRegex(@"listening on 127\.0\.0\.1:([0-9]+) ")]
    private static partial Regex PortRegex();

    /// <summary>The relay process and what it writes to its stderr socket.</summary>
    private sealed class RelaydUnderJournal : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly TcpClient _stderr;
        private readonly StringBuilder _stderrText = new();
        private readonly StringBuilder _stdoutText = new();
        private readonly Task _reading;

        public RelaydUnderJournal(Process process, TcpClient stderr)
        {
            _process = process;
            _stderr = stderr;
            _reading = Task.WhenAll(ReadAsync(stderr.GetStream(), _stderrText), ReadAsync(process.StandardOutput.BaseStream, _stdoutText));
        }

        public string StandardError => Text(_stderrText);

        public string StandardOutput => Text(_stdoutText);

        /// <summary>stdout once it contains <paramref name="text"/>; fails after 30 s.</summary>
        public async Task<string> StandardOutputContainingAsync(string text)
        {
            var deadline = Stopwatch.StartNew();
            while (!StandardOutput.Contains(text, StringComparison.Ordinal))
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30) && !_process.HasExited, $"stdout has no '{text}': {StandardOutput}\nstderr: {StandardError}");
                await Task.Delay(20);
            }

            return StandardOutput;
        }

        /// <summary>SIGTERM, as systemctl stop sends; the relay drains and exits 0.</summary>
        public async Task StopAsync()
        {
            ExternalProcess.Result kill = await ExternalProcess.RunAsync("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            Assert.True(kill.ExitCode == 0, kill.StandardError);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _process.WaitForExitAsync(timeout.Token);
            await _reading;
            Assert.True(_process.ExitCode == 0, $"relayd exited {_process.ExitCode}; stderr: {StandardError}");
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }

            _stderr.Dispose();
            _process.Dispose();
        }

        private static string Text(StringBuilder text)
        {
            lock (text)
            {
                return text.ToString();
            }
        }

        private static async Task ReadAsync(Stream stream, StringBuilder text)
        {
            byte[] buffer = new byte[4096];
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                lock (text)
                {
                    _ = text.Append(Encoding.UTF8.GetString(buffer, 0, read));
                }
            }
        }
    }
}
