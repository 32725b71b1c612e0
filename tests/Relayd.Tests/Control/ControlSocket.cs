using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Control;

/// <summary>A relay process with its control socket in a temporary directory, and the two ways to talk to it: the real client and raw JSON lines.</summary>
internal sealed class ControlledRelay : IAsyncDisposable
{
    private readonly DirectoryInfo _directory;

    private ControlledRelay(DirectoryInfo directory, RelaydProcess relay)
    {
        _directory = directory;
        Relay = relay;
    }

    public RelaydProcess Relay { get; }

    public string SocketPath => Path.Combine(_directory.FullName, "control.sock");

    /// <summary>A relay process with a control socket; <paramref name="tables"/> adds TOML tables to its configuration.</summary>
    public static async Task<ControlledRelay> StartAsync(TestPki pki, string tables = "")
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("relayd-ctl-");
        var relay = new RelaydProcess(pki, tables: $"""
            [control]
            socket = "{Path.Combine(directory.FullName, "control.sock")}"

            {tables}
            """);
        var controlled = new ControlledRelay(directory, relay);
        await relay.StartAsync();
        await relay.WaitForOutputAsync("Control socket listening");
        return controlled;
    }

    /// <summary><c>relayd ctl --socket PATH ARGS</c>, the built client.</summary>
    public Task<ExternalProcess.Result> CtlAsync(params string[] arguments) =>
        ExternalProcess.RunRelaydAsync(["ctl", "--socket", SocketPath, .. arguments]);

    /// <summary><c>relayd ctl --json ARGS</c>: its output parsed, after checking it exited 0.</summary>
    public async Task<JsonElement> CtlJsonAsync(params string[] arguments)
    {
        ExternalProcess.Result result = await CtlAsync(["--json", .. arguments]);
        Assert.True(result.ExitCode == 0, $"relayd ctl --json {string.Join(' ', arguments)} exited {result.ExitCode}:\n{result.StandardOutput}{result.StandardError}");
        JsonElement response = JsonDocument.Parse(result.StandardOutput).RootElement;
        Assert.True(response.GetProperty("ok").GetBoolean());
        return response;
    }

    /// <summary>Writes <paramref name="lines"/> to the socket as they are and reads one response line per line.</summary>
    public async Task<List<JsonElement>> RawAsync(params string[] lines)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), TestContext.Current.CancellationToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var responses = new List<JsonElement>();
        foreach (string line in lines)
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), TestContext.Current.CancellationToken);
            string? answer = await reader.ReadLineAsync(TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            Assert.NotNull(answer);
            responses.Add(JsonDocument.Parse(answer).RootElement);
        }

        return responses;
    }

    /// <summary>Polls <c>ctl --json COMMAND</c> until <paramref name="done"/> holds (a generous deadline for a loaded machine).</summary>
    public async Task<JsonElement> WaitForAsync(string command, Func<JsonElement, bool> done, int seconds = 30)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            List<JsonElement> response = await RawAsync($$"""{"command":"{{command}}"}""");
            if (done(response[0]) || DateTime.UtcNow > deadline)
            {
                return response[0];
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Relay.DisposeAsync();
        _directory.Delete(recursive: true);
    }
}
