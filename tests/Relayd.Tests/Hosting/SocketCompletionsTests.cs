using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Hosting;

/// <summary>
/// The daemon runs socket continuations on the runtime's event threads, one per core, instead of handing each to
/// the thread pool; an admin's DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=0 keeps the hand-off. The runtime names
/// its event threads ".NET Sockets": with inline completions it starts one per core, otherwise one per 30 cores.
/// </summary>
public sealed class SocketCompletionsTests : IClassFixture<PkiFixture>
{
    private const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";
    private readonly TestPki _pki;

    public SocketCompletionsTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task The_daemon_completes_socket_operations_on_one_event_thread_per_core_unless_the_admin_turned_it_off()
    {
        Assert.SkipWhen(Environment.ProcessorCount < 2, "one core: both modes start a single event thread");
        Assert.SkipWhen(Environment.GetEnvironmentVariable(Variable) is not null, $"{Variable} is set for the tests, and relays inherit it");

        Assert.Equal(Environment.ProcessorCount, await SocketEventThreadsAsync(adminSetting: null));
        Assert.Equal(Math.Max(1, (int)Math.Round(Environment.ProcessorCount / 30.0)), await SocketEventThreadsAsync(adminSetting: "0"));
    }

    private async Task<int> SocketEventThreadsAsync(string? adminSetting)
    {
        await using var relay = new RelaydProcess(_pki);
        if (adminSetting is not null)
        {
            relay.Environment[Variable] = adminSetting;
        }

        await relay.StartAsync();
        await using RawPartnerConnection alpha = await RawPartnerConnection.ConnectAsync(relay.Port, _pki.Partner("alpha"), _pki.Ca);
        await alpha.SendHelloAsync();
        Assert.NotNull((await alpha.ReadFrameAsync())?.Welcome); // sockets are registered with the runtime's engines by now

        return Directory.GetDirectories($"/proc/{relay.Pid}/task")
            .Count(task => File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n') == ".NET Sockets");
    }
}
