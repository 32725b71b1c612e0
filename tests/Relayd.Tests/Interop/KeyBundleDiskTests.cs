using System.Text;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Interop;

/// <summary>
/// What is routed live never reaches disk: a real relayd process exchanges a key bundle (and, in TypingTests, a typing
/// notice) carrying a random marker, and no file under its log or spool directory, nor its output, holds the marker.
/// </summary>
public sealed class KeyBundleDiskTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public KeyBundleDiskTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task No_byte_of_a_key_bundle_or_its_users_is_written_to_the_WAL_the_spool_or_the_log()
    {
        string spool = Directory.CreateTempSubdirectory("relayd-live-spool-").FullName;
        try
        {
            await using var relay = new RelaydProcess(_pki, tables: $"""
                [media]
                spool_dir = "{spool}"
                """);
            await relay.StartAsync();
            await using RelayClient alpha = await relay.ConnectAsync("alpha");
            await using RelayClient beta = await relay.ConnectAsync("beta");
            string marker = "bundle-marker-" + Guid.NewGuid().ToString("N");
            string user = "user-marker-" + Guid.NewGuid().ToString("N");

            Task<KeyBundleResponse> answer = alpha.RequestKeyBundleAsync(Encoding.UTF8.GetBytes(user), "beta", Encoding.UTF8.GetBytes(user), TestContext.Current.CancellationToken);
            await foreach (KeyBundleRequest request in beta.ReadKeyBundleRequestsAsync(TestContext.Current.CancellationToken))
            {
                await beta.RespondKeyBundleAsync(request, Encoding.UTF8.GetBytes(marker), TestContext.Current.CancellationToken);
                break;
            }

            KeyBundleResponse response = await answer.Within();
            // Something durable after the bundle, so that the log has been written and synced past it.
            await alpha.SendAsync(Envelopes.New("alpha", "beta")).Within();
            await relay.TerminateAsync();

            Assert.Equal(marker, response.Bundle.ToStringUtf8());
            LiveMarkers.AssertNowhere(marker, relay, spool);
            LiveMarkers.AssertNowhere(user, relay, spool);
        }
        finally
        {
            Directory.Delete(spool, recursive: true);
        }
    }
}

/// <summary>Looks for a marker in every file under a relay's directories and in its output.</summary>
internal static class LiveMarkers
{
    public static void AssertNowhere(string marker, RelaydProcess relay, string spool)
    {
        byte[] needle = Encoding.UTF8.GetBytes(marker);
        string[] files = [.. Directory.EnumerateFiles(relay.WalDirectory, "*", SearchOption.AllDirectories), .. Directory.EnumerateFiles(spool, "*", SearchOption.AllDirectories)];
        Assert.NotEmpty(files); // the log exists: the search below looked at something
        foreach (string file in files)
        {
            Assert.True(File.ReadAllBytes(file).AsSpan().IndexOf(needle) < 0, $"{file} holds the marker");
        }

        Assert.False(string.IsNullOrEmpty(relay.AllOutput), "the relay printed nothing: the output search would prove nothing");
        Assert.DoesNotContain(marker, relay.AllOutput, StringComparison.Ordinal);
    }
}
