using System.Net;
using System.Net.Sockets;
using Microsoft.Win32.SafeHandles;
using Relayd.Hosting.Commands;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;
using Relayd.Wal;

namespace Relayd.Tests.Durability;

/// <summary>
/// An Ack means "on disk": it is sent only after the envelope's batch is written and fdatasync'ed, and an fdatasync
/// error sends no Ack for the batch and stops the relay (PostgreSQL's fsync rule). The disk is the real one behind a
/// seam that can hold or fail fdatasync (fault injection only).
/// </summary>
public sealed class AckDurabilityTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public AckDurabilityTests(PkiFixture fixture) => _pki = fixture.Pki;

    /// <summary>The real fdatasync, which can be held (blocks until released) or made to fail with EIO.</summary>
    private sealed class ControlledDisk : IWalFileSync
    {
        private readonly ManualResetEventSlim _open = new(initialState: true);

        public volatile bool Failing;
        public int Syncs;

        public void Hold() => _open.Reset();

        public void Release() => _open.Set();

        public int FDataSync(SafeFileHandle file)
        {
            _open.Wait(TimeSpan.FromSeconds(30));
            if (Failing)
            {
                return 5; // EIO
            }

            int result = LibcFileSync.Instance.FDataSync(file);
            Interlocked.Increment(ref Syncs);
            return result;
        }
    }

    [Fact]
    public async Task An_Ack_is_sent_only_after_the_envelope_is_fdatasynced()
    {
        var disk = new ControlledDisk();
        await using TestRelay relay = TestRelay.Start(_pki, o => o.Storage.FileSync = disk);
        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within(); // warm: the segment and the session are ready

        disk.Hold();
        int syncsBefore = Volatile.Read(ref disk.Syncs);
        Task<Ack> ack = alpha.SendAsync(Envelopes.New("alpha", "beta"));
        await Task.Delay(500, TestContext.Current.CancellationToken);
        Assert.False(ack.IsCompleted, "the Ack came before fdatasync returned");

        disk.Release();
        await ack.Within();
        Assert.True(Volatile.Read(ref disk.Syncs) > syncsBefore);
    }

    [Fact]
    public async Task An_fdatasync_error_sends_no_Ack_for_the_batch_and_stops_the_relay_with_a_nonzero_exit_code()
    {
        var disk = new ControlledDisk();
        RelayOptions options = TestRelay.DefaultOptions(_pki);
        int port = FreePort();
        options.Listen = $"127.0.0.1:{port}";
        options.Storage.FileSync = disk;
        Task<int> relay = ServeCommands.RunHostAsync(options, TestContext.Current.CancellationToken);
        try
        {
            await using RelayClient alpha = await ConnectWhenListeningAsync(port, relay);
            await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();

            disk.Failing = true;
            Task<Ack> unacked = alpha.SendAsync(Envelopes.New("alpha", "beta"));
            int exitCode = await relay.Within(30);

            Assert.Equal(ExitCodes.StorageFailed, exitCode);
            await Assert.ThrowsAnyAsync<Exception>(() => unacked.Within(10));
        }
        finally
        {
            Directory.Delete(options.Storage.Directory, recursive: true);
        }
    }

    private async Task<RelayClient> ConnectWhenListeningAsync(int port, Task relay)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                return await RelayClient.ConnectAsync(new RelayClientOptions
                {
                    Host = "localhost",
                    Port = port,
                    Tls = new() { ClientCertificate = _pki.Partner("alpha"), RelayRoots = [_pki.Ca] },
                    ConnectTimeout = TimeSpan.FromSeconds(5),
                }, TestContext.Current.CancellationToken);
            }
            catch (Exception ex) when (ex is SocketException or IOException && DateTime.UtcNow < deadline && !relay.IsCompleted)
            {
                await Task.Delay(50, TestContext.Current.CancellationToken);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
