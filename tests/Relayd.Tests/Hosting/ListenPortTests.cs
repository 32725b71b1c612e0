using System.Globalization;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// The listen port belongs to one relay: a second one on a busy port refuses to start (no SO_REUSEPORT sharing the
/// connections between them), while a restart binds at once although the old connections still hold the port.
/// </summary>
public sealed class ListenPortTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public ListenPortTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_second_relay_on_a_port_in_use_refuses_to_start_naming_the_address()
    {
        await using var first = new RelaydProcess(_pki);
        await first.StartAsync();
        string second = RelaydConfigFile.Write(_pki, "second-relay", first.Port,
            $"[wal]\ndir = \"{Path.Combine(_pki.Directory, $"wal-second-{first.Port}")}\"\nreserve_bytes = 0\n");

        // Before the fix the second relay listened too, so this run would not end by itself: keep the wait short.
        ExternalProcess.Result result = await ExternalProcess.RunAsync("dotnet", [Path.Combine(AppContext.BaseDirectory, "relayd.dll"), "run", "--config", second], timeoutSeconds: 60);

        string line = Assert.Single(CliAssert.Refusal(result, expectedExitCode: 69));
        Assert.Equal($"relayd: refusing to start: cannot listen on 127.0.0.1:{first.Port}: address already in use (is another relayd running?)", line);
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(first.Port, _pki.Partner("alpha"), _pki.Ca);
        await alpha.SendHelloAsync();
        Assert.NotNull((await alpha.ReadFrameAsync())?.Welcome);
    }

    [Fact]
    public async Task A_relay_restarted_right_after_one_with_live_connections_stopped_binds_the_port_at_once()
    {
        await using var relay = new RelaydProcess(_pki);
        await relay.StartAsync();
        var partners = new List<RawPartnerConnection>();
        try
        {
            foreach (string id in new[] { "alpha", "beta" })
            {
                RawPartnerConnection partner = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner(id), _pki.Ca);
                partners.Add(partner);
                await partner.SendHelloAsync();
                Assert.NotNull((await partner.ReadFrameAsync())?.Welcome);
            }

            Assert.Equal(0, await relay.TerminateAsync()); // the relay closes the connections it still has at the drain deadline
        }
        finally
        {
            foreach (RawPartnerConnection partner in partners)
            {
                await partner.DisposeAsync();
            }
        }

        // The precondition that makes this test mean something: the port is still held by the old connections.
        Assert.True(ClosingSocketsOn(relay.Port) > 0, $"no closed connection holds port {relay.Port}: the test proves nothing");
        relay.Launch(); // one attempt: no retrying until the old sockets are gone
        await relay.WaitForOutputAsync("listening on");
    }

    /// <summary>Sockets bound to local <paramref name="port"/> that are neither listening nor open (TIME_WAIT, FIN_WAIT…).</summary>
    private static int ClosingSocketsOn(int port)
    {
        const string Listen = "0A";
        const string Established = "01";
        int count = 0;
        foreach (string table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            foreach (string row in File.ReadLines(table).Skip(1))
            {
                string[] fields = row.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                string local = fields[1];
                int localPort = int.Parse(local[(local.LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (localPort == port && fields[3] is not Listen and not Established)
                {
                    count++;
                }
            }
        }

        return count;
    }
}
