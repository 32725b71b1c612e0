using Relayd.LoadGen.Media;
using Relayd.Protocol;
using Relayd.Protocol.V1;
using Relayd.Security;
using Relayd.Tests.Infrastructure;

namespace Relayd.Tests.Media;

/// <summary>Media after a configuration reload: a partner approved by it sends and receives blobs, and a kept partner's new limit applies.</summary>
public sealed class MediaReloadTests : IClassFixture<PkiFixture>
{
    private readonly TestPki _pki;

    public MediaReloadTests(PkiFixture fixture) => _pki = fixture.Pki;

    [Fact]
    public async Task A_partner_approved_by_a_reload_exchanges_media_and_a_kept_partners_new_limit_applies()
    {
        await using TestRelay relay = TestRelay.Start(_pki);
        RelayOptions reloaded = TestRelay.DefaultOptions(_pki);
        reloaded.Partners.Add(new PartnerOptions { Id = "delta" });
        reloaded.Partners.Single(p => p.Id == "alpha").MaxMediaBytes = 1024;
        relay.Server.ApplyReload(reloaded, _pki.Server, new PartnerCertificateValidator([_pki.Ca], null), tlsChanged: false);

        await using RelayClient delta = await relay.ConnectAsync("delta");
        await using RelayClient beta = await relay.ConnectAsync("beta");
        using var blob = new BlobStream(256 * 1024 + 3, seed: 4);
        MediaOpen open = MediaBlobs.Open("delta", "beta", blob);
        blob.Position = 0;
        Task<(MediaOpen Open, long Length, byte[] Sha256)> received = MediaBlobs.ReceiveAsync(beta);
        await delta.SendMediaAsync(open, blob).Within(60);
        Assert.Equal(blob.Length, (await received.Within(60)).Length);

        await using RelayClient alpha = await relay.ConnectAsync("alpha");
        using var tooLarge = new BlobStream(4096, seed: 5);
        RelayException refused = await Assert.ThrowsAsync<RelayException>(() => alpha.SendMediaAsync(MediaBlobs.Open("alpha", "beta", tooLarge), tooLarge).Within(30));
        Assert.Equal(ErrorCode.MediaTooLarge, refused.Code);
    }
}
